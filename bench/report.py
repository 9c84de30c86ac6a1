"""Benchmark ``runner report`` on a real 10,000-task job (target: <= 5 s, <= 5 MB).

Run by hand: ``python bench/report.py [--tasks 10000] [--fail-every 500]``. On a local
stack of its own (in a temporary folder, stopped at the end) it submits one task per
input with a trivial ``--script`` that fails for every ``--fail-every``-th input (each
failing task is retried once, as ``submit`` does by default), keeping the inputs so the
report has bytes in to count. The job takes some minutes on two cores. Then it times
``python -m runner report JOB`` three times as a person runs it (a new interpreter
each time), and once in this process split into reading the records and rendering the
page, and prints the seconds and the size of the HTML.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contract.outputs import StackOutputs
from local_stack import stack as local_stack

SCRIPT = """\
import pathlib, sys
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
number = int(pathlib.Path(name).stem.removeprefix("doc"))
if number % {fail_every} == 0:
    print(f"cannot use {{name}}: input {{number}} is one the benchmark fails", file=sys.stderr)
    sys.exit(3)
out.mkdir(parents=True, exist_ok=True)
(out / "size.txt").write_text(str(len(pathlib.Path(name).read_bytes())))
"""


def make_inputs(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    for index in range(count):
        (directory / f"doc{index:05d}.txt").write_text(f"input {index}\n" * 8)


def submit(work: Path, outputs: Path, job_id: str, args: argparse.Namespace) -> float:
    script = work / "trivial.py"
    script.write_text(SCRIPT.format(fail_every=args.fail_every))
    command = [
        sys.executable, "-m", "runner", "submit", "inputs", "--outputs", str(outputs),
        "--job-id", job_id, "--keep-inputs", "--out", str(work / "results"),
        "--script", str(script), "--", "{input}", "{output_dir}",
    ]  # fmt: skip
    started = time.perf_counter()
    with open(work / "submit.out", "w") as out:
        process = subprocess.Popen(
            command,
            cwd=work,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CI": "1"},
        )
        assert process.stderr is not None
        last = 0.0
        failed = 0
        for line in process.stderr:
            elapsed = time.perf_counter() - started
            if line.startswith("task "):  # a failed task, then its stderr: counted
                failed += 1
            elif line.startswith("  |") or (line.startswith("active ") and elapsed - last < 30):
                continue
            else:
                print(f"{elapsed:7.1f} s  {line.rstrip()}", flush=True)
                last = elapsed
        print(f"{time.perf_counter() - started:7.1f} s  {failed} tasks failed, as made to")
    status = process.wait()
    if status not in (0, 1):  # 1: the tasks made to fail did
        raise SystemExit(f"runner submit exited with {status}")
    return time.perf_counter() - started


def time_command(work: Path, outputs: Path, job_id: str, page: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "runner", "report", job_id, "--outputs", str(outputs),
            "--out", str(page),
        ],
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def time_in_process(outputs: Path, job_id: str) -> tuple[float, float, int]:
    from runner import report
    from runner.clients import connect
    from runner.report import data as report_data

    clients = connect(StackOutputs.read(outputs))
    started = time.perf_counter()
    data = report_data.fetch(clients, job_id)
    fetched = time.perf_counter()
    report.render(data)
    return fetched - started, time.perf_counter() - fetched, len(data.tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--fail-every", type=int, default=500)
    args = parser.parse_args()
    job_id = f"bench-report-{args.tasks}-{os.getpid()}"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        paths = local_stack.Paths(work / "stack")
        try:
            local_stack.up(paths=paths)
            make_inputs(work / "inputs", args.tasks)
            seconds = submit(work, paths.outputs, job_id, args)
            print(f"job {job_id}: {args.tasks} tasks ran in {seconds:.1f} s (runner submit)")
            page = work / "report.html"
            runs = [time_command(work, paths.outputs, job_id, page) for _ in range(3)]
            size = page.stat().st_size
            fetch_s, render_s, tasks = time_in_process(paths.outputs, job_id)
            print(
                f"runner report {job_id}: "
                + ", ".join(f"{s:.2f} s" for s in runs)
                + f" (whole command, 3 runs; target <= 5 s); HTML {size / 1e6:.2f} MB "
                f"({size:,} bytes; target <= 5 MB)"
            )
            print(
                f"  in process: reading the {tasks:,} tasks' records and the storage "
                f"listings {fetch_s:.2f} s, rendering the page {render_s:.2f} s"
            )
        finally:
            local_stack.down(paths)


if __name__ == "__main__":
    main()
