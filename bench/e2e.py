"""Benchmark the runner end to end on the local stack, against plain local parallelism.

Run by hand: ``python bench/e2e.py [--inputs 500]``. On a local stack of its own (started
with request logging, stopped at the end) it measures, in one run:

1. ``runner submit`` of N small inputs vs the same topwords.py commands run with
   ``xargs -P <cores>``: wall seconds and their ratio (target <= 1.2), a task per input
   and then 10 inputs a task (``--files-per-task 10`` vs ``xargs -n 10``), with the CPU
   seconds each part of the runner's run used (tasks, runner, emulator, Azurite), which
   says where the time beyond the tasks' own goes, and the storage requests per input
   (counted from Azurite's access log: uploads, the nodes' reads and writes, downloads);
2. requests per monitoring poll, counted from the emulator's request log, for jobs of
   10, 1,000 and 10,000 tasks (target: constant, <= 2).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from azure.batch import models

from contract.outputs import StackOutputs
from contract.rest import pool_body
from contract.spec import Pool, Spec
from local_stack import stack as local_stack
from runner import monitor
from runner.clients import connect

ROOT = Path(__file__).resolve().parent.parent
TOPWORDS = ROOT / "task" / "topwords.py"
WORDS = (
    "the", "of", "and", "a", "to", "in", "is", "was", "it", "for",
    "on", "with", "as", "his", "that", "he", "at", "by", "from",
)  # fmt: skip


def make_inputs(directory: Path, count: int) -> list[Path]:
    rng = random.Random(11)
    directory.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = directory / f"doc{i:04d}.txt"
        path.write_text(" ".join(rng.choices(WORDS, k=2000)))
        paths.append(path)
    return paths


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, waited-for children's) CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def time_runner(outputs: Path, inputs: list[Path], work: Path, per_task: int = 1) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "submit",
            *[p.name for p in inputs],
            "--outputs",
            str(outputs),
            "--job-id",
            f"bench-{len(inputs)}-{per_task}-{os.getpid()}",
            "--files-per-task",
            str(per_task),
            "--out",
            str(work / f"runner-out-{per_task}"),
        ],
        cwd=inputs[0].parent,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CI": "1"},
    )
    return time.perf_counter() - started


def node_python() -> str:
    """The interpreter the runner's tasks run: python3 from PATH, resolved (the job's
    preparation links it, so a shim such as pyenv's runs once a node, not once a task)."""
    found = subprocess.run(
        ["python3", "-c", "import os, sys; print(os.path.realpath(sys.executable))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return found.stdout.strip()


def time_xargs(inputs: list[Path], work: Path, per_call: int = 1) -> float:
    cores = len(os.sched_getaffinity(0))
    started = time.perf_counter()
    subprocess.run(
        [
            "xargs",
            "-P",
            str(cores),
            "-n",
            str(per_call),
            node_python(),  # the interpreter the tasks run
            str(TOPWORDS),
            "--output-dir",
            str(work / f"xargs-out-{per_call}"),
            "--workers",
            "1",
        ],
        input="\n".join(str(p) for p in inputs),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


STORAGE_REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE|PATCH|OPTIONS) /')


def storage_requests(log: Path) -> int:
    """Requests Azurite has logged so far (one access-log line each)."""
    with open(log, encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if STORAGE_REQUEST.search(line))


def requests_per_poll(outputs: StackOutputs, log: Path, sizes: list[int], polls: int = 5) -> None:
    clients = connect(outputs)
    batch = clients.batch
    # A pool with no nodes: the tasks stay active, so every job is watched for `polls` polls.
    batch.create_pool(pool_body(_idle_pool()))  # type: ignore[arg-type]
    for size in sizes:
        job_id = f"polls-{size}"
        batch.create_job(
            models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id="idle"))
        )
        batch.create_tasks(
            job_id,
            [
                models.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true")
                for i in range(size)
            ],
            max_concurrency=8,
        )
        before = len(log.read_text().splitlines())
        count = 0

        def sleep(_: float) -> None:
            nonlocal count
            count += 1
            if count >= polls:
                raise StopIteration

        with contextlib.suppress(StopIteration):
            monitor.watch(batch, job_id, size, lambda _: None, interval=0, sleep=sleep)
        made = len(log.read_text().splitlines()) - before
        print(f"job of {size:>6} tasks: {made / polls:.1f} requests per poll ({made} in {polls})")


def _idle_pool() -> Spec:
    return Spec(
        pool=dataclasses.replace(Pool(), id="idle", autoscale=False, fixed_dedicated_nodes=0)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=500)
    parser.add_argument("--files-per-task", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        paths = local_stack.Paths(work / "stack")
        try:
            outputs = local_stack.up(paths=paths, log_requests=True)
            inputs = make_inputs(work / "inputs", args.inputs)
            cores = len(os.sched_getaffinity(0))
            servers = {name: int(paths.pid(name).read_text()) for name in ("emulator", "azurite")}
            azurite_log = paths.log("azurite")
            for per_task in args.files_per_task:
                before = {name: cpu_seconds(pid) for name, pid in servers.items()}
                requests = -storage_requests(azurite_log)
                runner_cpu = -_children_cpu()
                runner_seconds = time_runner(paths.outputs, inputs, work, per_task)
                runner_cpu += _children_cpu()
                requests += storage_requests(azurite_log)
                after = {name: cpu_seconds(pid) for name, pid in servers.items()}
                xargs_cpu = -_children_cpu()
                xargs_seconds = time_xargs(inputs, work, per_task)
                xargs_cpu += _children_cpu()
                print(
                    f"{args.inputs} inputs, {per_task} a task: runner submit --files-per-task "
                    f"{per_task} {runner_seconds:.2f} s, xargs -P {cores} -n {per_task} "
                    f"{xargs_seconds:.2f} s, ratio {runner_seconds / xargs_seconds:.2f} "
                    "(target <= 1.2)"
                )
                emulator = after["emulator"][0] - before["emulator"][0]
                tasks = after["emulator"][1] - before["emulator"][1]
                azurite = after["azurite"][0] - before["azurite"][0]
                print(
                    f"  CPU seconds: the runner's tasks {tasks:.1f}, runner {runner_cpu:.1f}, "
                    f"emulator {emulator:.1f}, Azurite {azurite:.1f}; xargs and its "
                    f"commands {xargs_cpu:.1f}"
                )
                print(f"  storage requests: {requests} ({requests / args.inputs:.2f} an input)")
            requests_per_poll(outputs, paths.local / "logs" / "requests.log", [10, 1_000, 10_000])
        finally:
            local_stack.down(paths)


if __name__ == "__main__":
    main()
