"""What the end-to-end tests share: clients signed in as the runner is, a unique job id
per run, the runner as a user runs it, and a task script that a test can hold running.

The stack under test (``stack``, ``stack_outputs``) comes from tests/conftest.py: a local
stack of the session's own, or any stack ``--outputs`` names, an Azure one included,
which every run and every xdist worker shares. So each job id a test gives carries the
session's tag (``job_ids``), and a test looks only at its own job and its own blobs.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from contract.outputs import StackOutputs
from runner.clients import connect

ROOT = Path(__file__).resolve().parents[2]
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What Batch takes as a job id (and the runner checks before any upload)."""

JobIds = Callable[[str], str]


@pytest.fixture(scope="session")
def job_ids() -> JobIds:
    """``job_ids("e2e-sample")`` is ``e2e-sample-<tag>``, the tag a random one of this
    session's: a stack that runs the suite again and again, or several xdist workers at
    once, never sees a test's job id twice."""
    tag = secrets.token_hex(4)

    def job_id(base: str) -> str:
        made = f"{base}-{tag}"
        assert JOB_ID.fullmatch(made), f"{made!r} is no job id Batch takes"
        return made

    return job_id


def batch_client(outputs: StackOutputs) -> BatchClient:
    """The stack's Batch account, signed in as the runner is (keys for a local stack,
    Entra ID for Azure)."""
    return connect(outputs).batch


def container_client(outputs: StackOutputs, name: str) -> ContainerClient:
    """One of the stack's containers, signed in as the runner is."""
    return connect(outputs).container(name)


def job_exists(batch: BatchClient, job_id: str) -> bool:
    """Whether the stack has this job: asked of it alone, not of a list of every job."""
    try:
        batch.get_job(job_id, select=["id"])
    except ResourceNotFoundError:
        return False
    return True


def interruptible() -> None:
    """A child's ``preexec_fn``: SIGINT as a terminal sends it, even when the tests run
    with it ignored (started in the background by a shell without job control, which
    ignores SIGINT in what it starts), so that Python turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def runner(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


GATED_SCRIPT = """\
import os, pathlib, sys, time
name, out, gate, most = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + most
while not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.05)
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".done")).write_text("done")
"""
"""A task that runs until the test opens its gate, or for at most ``most`` seconds. On a
local stack the nodes are processes on this machine and see the gate; a node in Azure
never does, and runs for ``most`` seconds. Arguments: {input} {output_dir} GATE MOST."""


class Gate:
    """A file that tasks of GATED_SCRIPT wait for: ``open()`` lets them end."""

    def __init__(self, directory: Path) -> None:
        self.script = directory / "gated.py"
        self.script.write_text(GATED_SCRIPT)
        self.path = directory / "gate.open"

    def arguments(self, most: float) -> list[str]:
        """What follows ``--script`` for a task held at most ``most`` seconds."""
        return [str(self.script), "--", "{input}", "{output_dir}", str(self.path), str(most)]

    def open(self) -> None:
        self.path.touch()


def fake_pulumi(directory: Path, stdout: str, status: int = 0) -> dict[str, str]:
    """A `pulumi` executable that answers `stack output --json` with known outputs."""
    directory.mkdir()
    script = directory / "pulumi"
    (directory / "answer.json").write_text(stdout)
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{directory}/args"\n'
        f"[ {status} -eq 0 ] || "
        f"{{ echo \"error: no stack named '$6' found\" >&2; exit {status}; }}\n"
        f'cat "{directory}/answer.json"\n'
    )
    script.chmod(0o755)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}
