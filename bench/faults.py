"""Benchmark what the local stack and the runner do when things go wrong.

Run by hand: ``python bench/faults.py [--scenario NAME ...]``. Each scenario runs on a
local stack of its own (started and stopped here) and ends in a row of one table:

- ``faults 5%``: 1,000 tasks with ``--faults 0.05`` on both halves of the stack, after
  the same job without faults (``baseline``) for comparison;
- ``node removed, node rebooted``: 100 tasks, a node removed (requeue) while they run
  and another rebooted;
- ``emulator kill -9``: the emulator killed mid-job and started again by ``local up``;
- ``runner kill -9 x10``: a 200-task submit killed at 10 points, each followed by the
  same submit.

Columns: tasks, faults injected by kind (from the stack's fault logs), tasks completed,
results downloaded and correct (equal to topwords run here on the same file), lost
(inputs without a correct result), duplicated (tasks beyond one per input, and runs of
a completed task again), wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.batch import BatchClient, models
from azure.batch.models._models import BatchNodeRebootOptions  # not exported by 15.0
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from reference import expected_top

from contract.outputs import StackOutputs
from local_stack import stack as local_stack
from runner.inputs import node_name

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "the", "of", "and", "a", "to", "in", "is", "was", "it", "for",
    "on", "with", "as", "his", "that", "he", "at", "by", "from",
)  # fmt: skip


@dataclass
class Row:
    scenario: str
    tasks: int
    faults: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    downloaded: int = 0
    lost: int = 0
    duplicated: int = 0
    seconds: float = 0.0


def make_inputs(directory: Path, count: int, words: int = 300) -> list[str]:
    rng = random.Random(count)
    directory.mkdir(parents=True)
    names = []
    for i in range(count):
        name = f"doc {i:04d}.txt"
        (directory / name).write_text(" ".join(rng.choices(WORDS, k=words)))
        names.append(name)
    return names


@contextmanager
def own_stack(root: Path, **options: Any) -> Iterator[tuple[local_stack.Paths, StackOutputs]]:
    paths = local_stack.Paths(root / "stack")
    try:
        yield paths, local_stack.up(paths=paths, **options)
    finally:
        local_stack.down(paths)


def batch_client(outputs: StackOutputs) -> BatchClient:
    assert outputs.local is not None
    return BatchClient(
        outputs.batchAccountEndpoint,
        AzureNamedKeyCredential(outputs.batchAccountName, outputs.local.batchAccountKey),
    )


def submit_command(outputs: Path, names: list[str], job_id: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "runner", "submit", *names, "--outputs", str(outputs),
        "--job-id", job_id, "--json", *extra,
    ]  # fmt: skip


def run_json(command: list[str], cwd: Path) -> dict[str, Any]:
    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=3600)
    if not finished.stdout.strip():
        raise RuntimeError(f"the runner printed nothing: {finished.stderr[-2000:]}")
    document: dict[str, Any] = json.loads(finished.stdout)
    return document


def score(row: Row, document: dict[str, Any], data: Path, batch: BatchClient, job: str) -> None:
    """Fill a row from the runner's --json and the job: correct results, lost, extra tasks."""
    by_input = {task["input"]: task for task in document["tasks"]}
    correct = 0
    for path in sorted(data.iterdir()):
        task = by_input.get(path.name)
        if task is None or task["exit_code"] != 0:
            continue
        correct += task["top"] == expected_top(path)
    inputs = sum(1 for _ in data.iterdir())
    tasks = list(batch.list_tasks(job, select=["id", "state"]))
    row.completed += sum(1 for task in tasks if task.state == "completed")
    row.downloaded += correct
    row.lost += inputs - correct
    row.duplicated += len(tasks) - inputs


def kill_when(command: list[str], cwd: Path, when: Callable[[], bool]) -> None:
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while process.poll() is None and not when():
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


# --- the scenarios --------------------------------------------------------------------


def runner_killed(root: Path, points: int = 10, inputs: int = 200) -> Row:
    """A submit killed with kill -9 at ``points`` moments spread over an unbroken run's
    length, each followed by the same submit (same --job-id)."""
    row = Row(f"runner kill -9 x{points}", inputs * points)
    started = time.perf_counter()
    with own_stack(root) as (paths, outputs):
        batch = batch_client(outputs)
        data = root / "data"
        names = make_inputs(data, inputs)
        clock = time.perf_counter()
        run_json(submit_command(paths.outputs, names, "unbroken", "--out", str(root / "u")), data)
        length = time.perf_counter() - clock
        print(f"  an unbroken run takes {length:.1f} s", file=sys.stderr)
        for point in range(1, points + 1):
            job = f"killed-{point}"
            command = submit_command(paths.outputs, names, job, "--out", str(root / job))
            at = time.monotonic() + length * point / (points + 1)
            kill_when(command, data, lambda at=at: time.monotonic() >= at)  # type: ignore[misc]
            document = run_json(command, data)
            score(row, document, data, batch, job)
            partial = list((root / job).rglob("*.part"))
            row.lost += len(partial)
    row.seconds = time.perf_counter() - started
    return row


def with_faults(root: Path, inputs: int = 1000, rate: float = 0.05) -> Row:
    """A job on a stack failing ``rate`` of Batch and storage requests, all kinds."""
    row = Row(f"faults {rate:.0%}" if rate else "no faults (the baseline)", inputs)
    started = time.perf_counter()
    with own_stack(root, faults=rate, fault_seed=2026) as (paths, outputs):
        data = root / "data"
        names = make_inputs(data, inputs)
        job = "with-faults"
        command = submit_command(paths.outputs, names, job, "--out", str(root / "out"))
        document = run_json(command, data)
        score(row, document, data, batch_client(outputs), job)
        row.lost += len(list((root / "out").rglob("*.part")))
        lines = paths.fault_log.read_text().splitlines() if paths.fault_log.exists() else []
        row.faults.update(line.split()[0] for line in lines)
    row.seconds = time.perf_counter() - started
    return row


SLOW_SCRIPT = """\
import pathlib, sys, time
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
time.sleep(0.5)
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".done")).write_text("done")
"""


def nodes_lost(root: Path, inputs: int = 100) -> Row:
    """A node removed from the pool (requeue) once a quarter of the tasks completed, and
    another rebooted (requeue) at half; requeued tasks must have used no retry."""
    row = Row("node removed, node rebooted", inputs)
    script = root / "slow.py"
    script.write_text(SLOW_SCRIPT)
    started = time.perf_counter()
    with own_stack(root) as (paths, outputs):
        batch = batch_client(outputs)
        data = root / "data"
        names = make_inputs(data, inputs)
        job, pool = "nodes-lost", outputs.poolId
        nodes = [node.id for node in batch.list_nodes(pool)]
        command = submit_command(
            paths.outputs, names, job, "--script", str(script), "--out", str(root / "out"),
            "--", "{input}", "{output_dir}",
        )  # fmt: skip
        process = subprocess.Popen(
            command, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        wait_for_completed(batch, job, inputs // 4)
        batch.begin_remove_nodes(
            pool,
            models.BatchNodeRemoveOptions(node_ids=[nodes[0]], node_deallocation_option="requeue"),
        )
        wait_for_completed(batch, job, inputs // 2)
        batch.begin_reboot_node(pool, nodes[1], BatchNodeRebootOptions(node_reboot_kind="requeue"))
        stdout, _ = process.communicate(timeout=3600)
        document = json.loads(stdout)
        tasks = list(batch.list_tasks(job))
        requeued = [t for t in tasks if t.execution_info and t.execution_info.requeue_count]
        retried = [t for t in requeued if t.execution_info and t.execution_info.retry_count]
        print(
            f"  {len(requeued)} tasks requeued, {len(retried)} of them used a retry",
            file=sys.stderr,
        )
        row.completed = sum(1 for task in tasks if task.state == "completed")
        ok = sum(1 for task in document["tasks"] if task["exit_code"] == 0)
        row.downloaded = min(ok, len(list((root / "out").rglob("*.done"))))
        row.lost = inputs - row.downloaded
        row.duplicated = len(tasks) - inputs + len(retried)
    row.seconds = time.perf_counter() - started
    return row


def wait_for_completed(batch: BatchClient, job: str, count: int) -> None:
    while True:
        try:
            if batch.get_job_task_counts(job).task_counts.completed >= count:
                return
        except HttpResponseError:  # the job is not there yet
            pass
        time.sleep(0.1)


RUNS_ONCE_SCRIPT = """\
import pathlib, sys, time
name, out, ledger = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
time.sleep(0.2)
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".done")).write_text("done")
with open(ledger, "a") as runs:
    runs.write(name + "\\n")
"""


def emulator_killed(root: Path, inputs: int = 200) -> Row:
    """The emulator killed with kill -9 once a third of the tasks completed, started
    again by ``local up``; a completed task that ran again is a duplicate."""
    row = Row("emulator kill -9", inputs)
    script, ledger = root / "once.py", root / "ledger.txt"
    script.write_text(RUNS_ONCE_SCRIPT)
    started = time.perf_counter()
    with own_stack(root) as (paths, outputs):
        batch = batch_client(outputs)
        data = root / "data"
        names = make_inputs(data, inputs)
        job = "emulator-killed"
        command = submit_command(
            paths.outputs, names, job, "--script", str(script), "--out", str(root / "out"),
            "--", "{input}", "{output_dir}", str(ledger),
        )  # fmt: skip
        process = subprocess.Popen(
            command, cwd=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        done_before: set[str] = set()
        while len(done_before) < inputs // 3:
            time.sleep(0.1)
            try:
                listed = batch.list_tasks(job, select=["id", "state", "displayName"])
                done_before = {t.display_name or "" for t in listed if t.state == "completed"}
            except Exception:  # the job is not there yet
                continue
        os.kill(int(paths.pid("emulator").read_text()), signal.SIGKILL)
        down = time.perf_counter()
        time.sleep(1)  # the kill is asynchronous: until it lands, the port still answers
        local_stack.up(paths=paths)
        print(
            f"  emulator killed with {len(done_before)} tasks completed, serving again "
            f"{time.perf_counter() - down:.1f} s later",
            file=sys.stderr,
        )
        stdout, _ = process.communicate(timeout=3600)
        document = json.loads(stdout)
        ok = sum(1 for task in document["tasks"] if task["exit_code"] == 0)
        runs = Counter(ledger.read_text().splitlines())
        tasks = list(batch.list_tasks(job, select=["id", "state"]))
        row.completed = sum(1 for task in tasks if task.state == "completed")
        row.downloaded = len(list((root / "out").rglob("*.done")))
        row.lost = inputs - min(ok, row.downloaded)
        row.duplicated = (
            len(tasks)
            - inputs
            + sum(runs[node_name(name)] - 1 for name in done_before if runs[node_name(name)] > 1)
        )
    row.seconds = time.perf_counter() - started
    return row


SCENARIOS: dict[str, Callable[[Path], Row]] = {
    "baseline": lambda root: with_faults(root, rate=0.0),
    "faults": with_faults,
    "nodes": nodes_lost,
    "emulator": emulator_killed,
    "runner": runner_killed,
}


def print_table(rows: list[Row]) -> None:
    print(
        "| scenario | tasks | faults injected | completed | results correct | lost "
        "| duplicated | wall s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(row.faults.items())) or "-"
        print(
            f"| {row.scenario} | {row.tasks} | {faults} | {row.completed} | {row.downloaded} "
            f"| {row.lost} | {row.duplicated} | {row.seconds:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="default: all, in order"
    )
    args = parser.parse_args()
    rows = []
    for name in args.scenario or list(SCENARIOS):
        with tempfile.TemporaryDirectory() as scratch:
            rows.append(SCENARIOS[name](Path(scratch)))
            print_table(rows[-1:])
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
