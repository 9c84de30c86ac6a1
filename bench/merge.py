"""Benchmark the merge stage: what ``submit --merge`` adds to a job's wall time.

Run by hand: ``python bench/merge.py [--inputs 10000] [--files-per-task 10 1]``. For each
--files-per-task it runs the same inputs as two jobs, without and with ``--merge``, each
on a fresh local stack of its own (Azurite slows as it holds more blobs, so a second job
on the same stack would pay for the first one's), and prints both wall
times and what the merge adds (target: <= 20 %). Both keep their inputs and write no
report: removing 10,000 blobs from Azurite takes minutes of its own, and neither is
what the merge changes. It checks the merged top words against
a count of every input's words made here, so a fast wrong merge does not pass.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_stack import stack as local_stack

WORDS = [f"w{i}" for i in range(3000)]


def make_inputs(directory: Path, count: int, words: int) -> collections.Counter[str]:
    """Inputs with a long-tailed vocabulary (so counts files are not trivial); returns the
    count of all their words together."""
    rng = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    directory.mkdir(parents=True)
    total: collections.Counter[str] = collections.Counter()
    for index in range(count):
        chosen = rng.choices(WORDS, weights, k=words)
        total.update(chosen)
        (directory / f"doc{index:05d}.txt").write_text(" ".join(chosen) + "\n")
    return total


def submit(outputs: Path, inputs: Path, work: Path, per_task: str, merge: bool) -> float:
    job_id = f"bench-merge-{per_task}-{'on' if merge else 'off'}-{os.getpid()}"
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "runner", "submit", str(inputs), "--outputs", str(outputs),
            "--job-id", job_id, "--files-per-task", per_task, "--out", str(work / job_id),
            "--keep-inputs", "--no-report",
            *(["--merge", "--top", "5"] if merge else ["--top", "5"]),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "1"},
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{job_id} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def on_a_fresh_stack(work: Path, per_task: str, merge: bool) -> float:
    paths = local_stack.Paths(work / f"stack-{per_task}-{merge}")
    try:
        local_stack.up(paths=paths)
        return submit(paths.outputs, work / "inputs", work, per_task, merge)
    finally:
        local_stack.down(paths)


def merged_top(work: Path, per_task: str) -> list[tuple[str, int]]:
    (found,) = work.glob(f"bench-merge-{per_task}-on-*/merged_OUTPUT.txt")
    return [(w, int(n)) for w, n in (line.split("\t") for line in found.read_text().splitlines())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=300, help="words per input")
    parser.add_argument("--files-per-task", nargs="+", default=["1", "10"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        total = make_inputs(work / "inputs", args.inputs, args.words)
        expected = sorted(total.items(), key=lambda item: (-item[1], item[0]))[:5]
        for per_task in args.files_per_task:
            plain = on_a_fresh_stack(work, per_task, merge=False)
            merged = on_a_fresh_stack(work, per_task, merge=True)
            correct = merged_top(work, per_task) == expected
            print(
                f"{args.inputs} inputs, --files-per-task {per_task}: submit {plain:.1f} s, "
                f"submit --merge {merged:.1f} s, the merge adds "
                f"{(merged - plain) / plain:+.1%} (target <= +20%); merged top 5 "
                f"{'equals' if correct else 'DIFFERS FROM'} the count made here",
                flush=True,
            )


if __name__ == "__main__":
    main()
