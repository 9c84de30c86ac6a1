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

RATES = {"500": 0.1, "503": 0.1, "429": 0.2, "reset": 0.1, "cut": 0.1, "partial": 0.5}
"""High enough that each kind happens in a small job: 429 is Batch's alone (storage never
answers it), and partial applies only to the one add-task-collection request a small job
makes (and the retries of its failed tasks), which alone draw for it."""


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_stack.Paths]:
    paths = local_stack.Paths(tmp_path_factory.mktemp("faulty-stack"))
    try:
        local_stack.up(paths=paths, faults=0.1, fault_seed=1)
        yield paths
    finally:
        local_stack.down(paths)


def _faults(log: Path) -> Counter[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(line.split()[0] for line in lines)


@pytest.mark.parametrize("kind", list(RATES))
def test_every_result_arrives_through_one_kind_of_fault(faulty, tmp_path, kind):
    outputs = local_stack.up(paths=faulty, faults=RATES[kind], fault_seed=7, fault_kinds=[kind])
    before = _faults(faulty.fault_log)[kind]
    names = []
    for i in range(8):
        name = f"doc {i}.txt"
        (tmp_path / name).write_text(f"one{i} two two three three three " * 50)
        names.append(name)
    job_id = f"faults-{kind}"
    done = runner(
        "submit", *names, "--outputs", str(faulty.outputs), "--job-id", job_id,
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
    assert _faults(faulty.fault_log)[kind] > before, f"no {kind} fault was injected"
