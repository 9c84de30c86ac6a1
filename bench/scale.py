"""Benchmark the runner at scale: 100,000 small inputs packed 100 to a task.

Run by hand: ``python bench/scale.py [--inputs 100000] [--files-per-task 100]``. On a
local stack of its own (started with request logging, stopped at the end) it generates
the inputs (1 KB of text each, in folders of 1,000), lists them in a file, runs
``runner submit --from-file LIST --files-per-task N`` and reports:

- the wall time of each phase, from the runner's own log lines;
- the runner's peak resident memory (target <= 300 MB);
- the Batch requests per monitoring poll while the job ran (target: 2);
- that every input has its result, equal to topwords run here on the same file.

``--keep-inputs`` is passed unless ``--remove-inputs`` is: removing 100,000 blobs costs
Azurite tens of milliseconds each (its blob index is rebuilt on every delete), which
measures Azurite rather than the runner; on Azure they go 256 to a batch request.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reference import expected_top

from local_stack import stack as local_stack

WORDS = (
    "the", "of", "and", "a", "to", "in", "is", "was", "it", "for",
    "on", "with", "as", "his", "that", "he", "at", "by", "from",
)  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def make_inputs(root: Path, count: int) -> Path:
    rng = random.Random(3)
    lines = []
    for i in range(count):
        folder = root / "data" / f"shard{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        path = folder / f"doc{i:06d}.txt"
        path.write_text(" ".join(rng.choices(WORDS, k=300))[:1024])
        lines.append(str(path.relative_to(root)))
    listing = root / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def run(root: Path, listing: Path, outputs: Path, log: Path, args: argparse.Namespace) -> None:
    command = [
        sys.executable, "-m", "runner", "submit", "--from-file", str(listing),
        "--files-per-task", str(args.files_per_task), "--outputs", str(outputs),
        "--out", str(root / "results"), "--json",
    ] + ([] if args.remove_inputs else ["--keep-inputs"])  # fmt: skip
    started = time.perf_counter()
    document_path = root / "results.json"
    with open(document_path, "w") as document_file:  # a pipe would fill while stderr is read
        process = subprocess.Popen(
            command,
            cwd=root,
            stdout=document_file,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CI": "1"},
        )
    assert process.stderr is not None
    marks: dict[str, int] = {}
    watched: list[str] = []
    for line in process.stderr:
        elapsed = time.perf_counter() - started
        if not line.startswith("active "):
            print(f"{elapsed:8.1f} s  {line.rstrip()}")
        if "added" in line and "tasks" in line:
            marks["watching"] = len(log.read_text().splitlines())
        if "downloaded" in line:
            marks["watched"] = len(log.read_text().splitlines())
            watched = log.read_text().splitlines()[marks["watching"] : marks["watched"]]
    _, status, usage = os.wait4(process.pid, 0)
    document = json.loads(document_path.read_text())
    wall = time.perf_counter() - started
    print(f"runner exit status {os.waitstatus_to_exitcode(status)}, wall {wall:.1f} s")
    print(f"runner peak resident memory {usage.ru_maxrss / 1024:.0f} MB (target <= 300 MB)")
    polls = sum(1 for line in watched if line.endswith("/taskcounts 200"))
    print(
        f"monitoring: {len(watched)} requests in {polls} polls = {len(watched) / polls:.2f} a poll"
    )
    check(root, document, args.inputs)


def check(root: Path, document: dict, count: int) -> None:  # type: ignore[type-arg]
    tasks = document["tasks"]
    assert len(tasks) == count, len(tasks)
    wrong = 0
    for task in tasks:
        path = root / task["input"]
        wrong += task["top"] != expected_top(path) or task["exit_code"] != 0
    packed = len({task["task_id"] for task in tasks})
    print(f"results: {count - wrong} of {count} correct, in {packed} tasks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--files-per-task", type=int, default=100)
    parser.add_argument("--remove-inputs", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        listing = make_inputs(root, args.inputs)
        print(f"generated {args.inputs} inputs in {time.perf_counter() - started:.1f} s")
        paths = local_stack.Paths(root / "stack")
        try:
            local_stack.up(paths=paths, log_requests=True)
            log = paths.local / "logs" / "requests.log"
            run(root, listing, paths.outputs, log, args)
        finally:
            local_stack.down(paths)


if __name__ == "__main__":
    main()
