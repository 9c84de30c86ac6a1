"""A user's own code and packages on the nodes: ``--code``, ``--requirements`` and
``--wheels``, through the job preparation task, and what its failure tells the user.

The package is a wheel built here (tests/wheels.py), so no test needs the network. On the
local stack the nodes share this machine, so an environment another test built with the
same wheel may be reused: the tests assert what holds either way, and read the nodes'
own preparation logs for which it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError

from runner.clients import state_name
from tests.e2e.conftest import batch_client, runner
from tests.wheels import tiny_wheel

SCRIPT = """\
import json, pathlib, sys
import helpers
import tinypkg
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
counts = tinypkg.count(pathlib.Path(name).read_text())
(out / (pathlib.Path(name).stem + ".json")).write_text(json.dumps(helpers.ranked(counts)))
"""
HELPERS = """\
def ranked(counts):
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
"""
TEXTS = {
    "one.txt": "the cat sat on the mat",
    "two words.txt": "to be or not to be",
    "trois été.txt": "été été hiver",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a script in a file name with a space, a helper module beside it,
    a requirements file, a wheelhouse, and inputs."""
    (tmp_path / "count words.py").write_text(SCRIPT)
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "requirements.txt").write_text("tinypkg==1.0\n")
    tiny_wheel(tmp_path / "wheels")
    for name, text in TEXTS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _submit(
    stack: Path, project: Path, job_id: str, *more: str
) -> subprocess.CompletedProcess[str]:
    return runner(
        "submit", *TEXTS, "--outputs", str(stack), "--job-id", job_id, "--json",
        "--script", str(project / "count words.py"), "--code", str(project / "helpers.py"),
        "--requirements", str(project / "requirements.txt"), "--wheels", str(project / "wheels"),
        "--out", str(project / "results"), *more,
        cwd=project,
    )  # fmt: skip


def _here(project: Path, name: str) -> list[list[object]]:
    """The script run on this machine, with the wheel and the helper on its path."""
    out = project / "here"
    env = {**os.environ, "PYTHONPATH": f"{project / 'wheels' / 'tinypkg-1.0-py3-none-any.whl'}"}
    subprocess.run(
        [sys.executable, str(project / "count words.py"), name, str(out)],
        cwd=project, env=env, check=True,
    )  # fmt: skip
    result: list[list[object]] = json.loads((out / f"{Path(name).stem}.json").read_text())
    return result


def _statuses(batch: BatchClient, job_id: str) -> list:  # type: ignore[type-arg]
    return list(batch.list_job_preparation_and_release_task_status(job_id))


def _prepare_log(batch: BatchClient, pool_id: str, node_id: str, job_id: str) -> str:
    path = f"workitems/{job_id}/job-1/jobpreparation/stdout.txt"
    return b"".join(batch.download_node_file(pool_id, node_id, path)).decode()


def _released(batch: BatchClient, job_id: str, timeout: float = 30) -> list:  # type: ignore[type-arg]
    """The status list once every node's release task has completed."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = _statuses(batch, job_id)
        done = [
            s
            for s in statuses
            if s.job_release_task_execution_info is not None
            and state_name(s.job_release_task_execution_info.state) == "completed"
        ]
        if len(done) == len(statuses) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


def test_a_script_with_its_own_code_and_packages(stack, stack_outputs, job_ids, project):
    """The script imports a helper (--code) and a package (--wheels), and gets what it
    gets here; each node prepared once; a second job reuses the environment; release ran
    on each node; a resubmit with other requirements is refused."""
    batch = batch_client(stack_outputs)
    job_id = job_ids("e2e-env")
    done = _submit(stack, project, job_id)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    results = project / "results"
    for name in TEXTS:
        (found,) = (t for t in document["tasks"] if t["input"] == name)
        assert found["exit_code"] == 0
        (written,) = (results / name).rglob("*.json")
        assert json.loads(written.read_text()) == _here(project, name)

    statuses = _statuses(batch, job_id)
    nodes = [s.node_id for s in statuses]
    assert nodes
    assert len(nodes) == len(set(nodes))  # once per node
    for status in statuses:
        info = status.job_preparation_task_execution_info
        assert state_name(info.result) == "success"
        assert info.retry_count == 0
    ran_on = {t.node_info.node_id for t in batch.list_tasks(job_id) if t.node_info}
    assert ran_on <= set(nodes)
    for status in _released(batch, job_id):
        release = status.job_release_task_execution_info
        assert release is not None, status
        assert state_name(release.result) == "success", status
        path = f"workitems/{job_id}/job-1/jobpreparation/wd/bundle.tar.gz"
        with pytest.raises(ResourceNotFoundError):  # the bundle went with the job
            b"".join(batch.download_node_file(stack_outputs.poolId, status.node_id, path))

    logs = runner("logs", job_id, "jobpreparation", "--outputs", str(stack), cwd=project)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.count("== node ") == len(nodes)
    assert logs.stdout.count("environment ") == len(nodes)  # built or reused, on each

    again = job_ids("e2e-env-again")
    second = _submit(stack, project, again)
    assert second.returncode == 0, second.stderr
    for status in _statuses(batch, again):
        log = _prepare_log(batch, stack_outputs.poolId, status.node_id, again)
        if status.node_id in nodes:  # built (or reused) by the first job: reused now
            assert ": reused" in log, log
            assert "built" not in log

    (project / "requirements.txt").write_text("tinypkg>=1.0\n")
    changed = _submit(stack, project, job_id)
    assert changed.returncode == 2
    assert "the requirements (--requirements changed)" in changed.stderr


def test_a_requirement_that_cannot_be_installed_ends_the_wait(
    stack, stack_outputs, job_ids, project
):
    """No tasks left waiting in active: exit 3 with the node, the exit code and the
    installer's own words, within the stall timeout; the job is terminated."""
    (project / "requirements.txt").write_text("tinypkg==9.9\n")
    job_id = job_ids("e2e-env-broken")
    started = time.monotonic()
    done = _submit(stack, project, job_id, "--stall-timeout", "20s")
    took = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "the job preparation task failed on every node" in last
    assert "exit code 1" in last
    assert "tinypkg==9.9" in last or "tinypkg" in last  # uv's resolution error
    assert "prepare: installing the requirements failed" in last
    assert f"job {job_id} is terminated" in last
    if stack_outputs.local is not None:  # an Azure pool may first take minutes for a node
        assert took < 20, took  # a failed preparation ends the wait without waiting it out
    batch = batch_client(stack_outputs)
    assert state_name(batch.get_job(job_id).state) in ("terminating", "completed")
