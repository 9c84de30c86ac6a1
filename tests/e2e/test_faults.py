"""The runner rides over each kind of fault the local stack can inject, one kind at a
time, on a stack of this module's own: every result arrives, no task is added twice,
and the faults really happened (counted in the stack's fault log)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack import stack as local_stack
from tests.e2e.conftest import batch_client, runner
from tests.stacks import Stacks, file_of

pytestmark = pytest.mark.emulator_only("injects faults into the local stack")

RATES = {"500": 0.1, "503": 0.1, "429": 0.2, "reset": 0.1, "cut": 0.1, "partial": 0.5}
"""High enough that each kind happens in a small job: 429 is Batch's alone (storage never
answers it), and partial applies only to the one add-task-collection request a small job
makes (and the retries of its failed tasks), which alone draw for it."""
SEED = 31
"""Faults come from one seeded draw per request. This seed's first draws fault the first
storage request (the script's upload: every kind of storage fault happens in any job)
and never two draws in a row: a request faulted once is seldom faulted again on its
retry. Each retry of a storage request waits 0.5 s (give or take 1), then 2.5, then 4.5:
with seed 7, whose draws 14, 15 and 16 all faulted, one upload could cost 7.5 s."""
INPUTS = 4
"""One task for each slot of the local pool (2 nodes of 2): the job's tasks run in one
round, so the nodes' downloads and uploads meet faults once, not twice. A kind costs what
its faulted phases wait for their retries, not what its inputs are: 8 inputs, or 3, took
as long (15 to 25 s a kind with seed 7, when the first retry waited 2.5 s)."""


@pytest.fixture(scope="module")
def faulty(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stacks, local_stack.Paths]]:
    """The module's stack: each test starts it with its own kind of fault (and so
    restarts the emulator and the fault proxy, with their state on disk)."""
    stacks = Stacks(file_of(request))
    paths = local_stack.Paths(tmp_path_factory.mktemp("faulty-stack"))
    try:
        yield stacks, paths
    finally:
        stacks.down(paths)


def _faults(log: Path) -> Counter[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(line.split()[0] for line in lines)


@pytest.mark.parametrize("kind", list(RATES))
def test_every_result_arrives_through_one_kind_of_fault(faulty, job_ids, tmp_path, kind):
    stacks, paths = faulty
    outputs = stacks.up(paths, faults=RATES[kind], fault_seed=SEED, fault_kinds=[kind])
    before = _faults(paths.fault_log)[kind]
    names = []
    for i in range(INPUTS):
        name = f"doc {i}.txt"
        (tmp_path / name).write_text(f"one{i} two two three three three " * 50)
        names.append(name)
    job_id = job_ids(f"faults-{kind}")
    done = runner(
        "submit", *names, "--outputs", str(paths.outputs), "--job-id", job_id,
        "--out", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[1:]
    assert len(rows) == len(names), done.stdout
    assert all(" ok " in row for row in rows), done.stdout
    tops = list((tmp_path / "out").rglob("*_OUTPUT.txt"))
    assert len(tops) == len(names)
    assert all("three\t150" in top.read_text() for top in tops)
    assert not list((tmp_path / "out").rglob("*.part"))
    batch = batch_client(outputs)
    assert len(list(batch.list_tasks(job_id, select=["id"]))) == len(names)
    assert _faults(paths.fault_log)[kind] > before, f"no {kind} fault was injected"
