"""Benchmark what a job environment costs on the local stack: the first job that needs one
(its nodes build it) and the jobs after it (they reuse it), against the same job without.

Run by hand: ``python bench/environment.py [--rounds 5]``. On a local stack of its own
(warmed by one job first, stopped at the end), a ``--script`` of three inputs that imports
a package runs:

1. with ``--requirements`` and ``--wheels`` (one small wheel) and a requirement no node has
   built yet: the first job, which builds the environment on each node; ``--rounds``
   times, each with requirements of its own; and right after each, the same script
   without requirements (its import made optional): what the environment added (target:
   at most 3 s);
2. then, pair by pair, the same job with the same requirements (built: reused) and the
   job without: the median of what reusing adds (target: at most 0.3 s).

Each figure is the wall time of ``runner submit`` from start to exit, as a user waits for
it; the nodes' own build times are read from their preparation logs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contract.outputs import StackOutputs
from local_stack import stack as local_stack
from runner.clients import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' tiny wheel
from tests.wheels import tiny_wheel

SCRIPT = """\
import pathlib, sys
try:
    import tinypkg
    count = tinypkg.count
except ImportError:  # the job without an environment
    def count(text):
        return {word: text.split().count(word) for word in set(text.split())}
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
words = count(pathlib.Path(name).read_text())
(out / "count.txt").write_text(str(len(words)))
"""


def submit(outputs: Path, work: Path, job_id: str, requirements: Path | None) -> float:
    extra = ["--requirements", str(requirements), "--wheels", str(work / "wheels")]
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "runner", "submit", "a.txt", "b.txt", "c.txt",
            "--outputs", str(outputs), "--job-id", job_id, "--script", str(work / "count.py"),
            "--out", str(work / "out" / job_id), "--no-report",
            *(extra if requirements else []),
        ],
        cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "CI": "1"},
    )  # fmt: skip
    return time.perf_counter() - started


def built_in(outputs: Path, job_id: str) -> list[str]:
    """Each node's ``environment ...`` line from its preparation log."""
    clients = connect(StackOutputs.read(outputs))
    lines = []
    for status in clients.batch.list_job_preparation_and_release_task_status(job_id):
        path = f"workitems/{job_id}/job-1/jobpreparation/stdout.txt"
        log = b"".join(
            clients.batch.download_node_file(clients.outputs.poolId, status.node_id or "", path)
        ).decode()
        lines += [line for line in log.splitlines() if line.startswith("environment")]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        paths = local_stack.Paths(work / "stack")
        try:
            local_stack.up(paths=paths)
            (work / "count.py").write_text(SCRIPT)
            tiny_wheel(work / "wheels")
            for name in ("a", "b", "c"):
                (work / f"{name}.txt").write_text(f"{name} the cat sat on the mat " * 200)
            submit(paths.outputs, work, "warm-up", None)
            first, plain = [], []
            for round_ in range(args.rounds):
                requirements = work / f"requirements-{round_}.txt"
                requirements.write_text(f"tinypkg>={round_ / 10}\n")  # a key no node has
                first.append(submit(paths.outputs, work, f"first-{round_}", requirements))
                print(f"first job {round_}: {first[-1]:.2f} s; nodes: "
                      + "; ".join(built_in(paths.outputs, f"first-{round_}")))  # fmt: skip
                plain.append(submit(paths.outputs, work, f"plain-{round_}", None))
            added = [a - b for a, b in zip(first, plain, strict=True)]
            print(
                f"first job with an environment {statistics.median(first):.2f} s, without "
                f"{statistics.median(plain):.2f} s: it adds {statistics.median(added):.2f} s "
                f"(median of {args.rounds} pairs; min {min(added):.2f}, max {max(added):.2f}; "
                "target <= 3 s)"
            )
            reused, plain = [], []
            requirements = work / "requirements-0.txt"
            for round_ in range(args.rounds):
                reused.append(submit(paths.outputs, work, f"reused-{round_}", requirements))
                plain.append(submit(paths.outputs, work, f"plain-again-{round_}", None))
            print("reused: nodes: " + "; ".join(built_in(paths.outputs, "reused-0")))
            added = [a - b for a, b in zip(reused, plain, strict=True)]
            print(
                f"a later job with the same environment {statistics.median(reused):.2f} s, "
                f"without {statistics.median(plain):.2f} s: it adds "
                f"{statistics.median(added):.2f} s (median of {args.rounds} pairs; min "
                f"{min(added):.2f}, max {max(added):.2f}; target <= 0.3 s)"
            )
        finally:
            local_stack.down(paths)


if __name__ == "__main__":
    main()
