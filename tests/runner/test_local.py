"""`python -m runner local up|status|down`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.outputs import StackOutputs
from local_stack import servers
from local_stack import stack as local_stack
from tests.stacks import Stacks

pytestmark = pytest.mark.e2e  # starts local stacks with `runner local up`

ROOT = Path(__file__).resolve().parents[2]


def runner(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNNER_LOCAL_DIR": str(home)},
        cwd=home.parent,
        timeout=180,
    )


def starting(stacks: Stacks, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``runner(*args)`` that may start the local stack at ``home``: a start it makes is
    counted for the test's file, as ``stacks.up`` counts its own."""
    return stacks.counted(local_stack.Paths(home), lambda: runner(*args, home=home))


@pytest.mark.emulator_only("starts local stacks of its own")
def test_up_status_down(stacks: Stacks, tmp_path: Path):
    home = tmp_path / "local"
    try:
        first = starting(stacks, "local", "up", home=home)
        assert first.returncode == 0, first.stderr
        outputs = StackOutputs.read(home / "outputs.json")
        assert outputs.poolId == "runner-pool"
        assert outputs.containers.input == "input"
        assert outputs.batchAccountEndpoint.startswith("http://127.0.0.1:")
        assert outputs.local is not None
        assert f"Batch:   {outputs.batchAccountEndpoint}" in first.stdout

        again = starting(stacks, "local", "up", home=home)  # idempotent: the same servers
        assert again.returncode == 0, again.stderr
        assert "starting" not in again.stderr
        assert StackOutputs.read(home / "outputs.json") == outputs

        status = runner("local", "status", home=home)
        assert status.returncode == 0, status.stderr
        assert "emulator  running on" in status.stdout
        # What a runner asks before each job: the outputs, from the pid files alone.
        asked = subprocess.run(
            [sys.executable, "-m", "local_stack", "outputs"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "RUNNER_LOCAL_DIR": str(home)},
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["outputs"] == str(home.resolve() / "outputs.json")
        assert ": idle" in status.stdout

        down = runner("local", "down", home=home)
        assert down.returncode == 0
        assert down.stdout.strip() == "stopped: emulator, azurite"
        stopped = runner("local", "status", home=home)
        assert stopped.returncode == 3
        assert "emulator  stopped" in stopped.stdout

        # A stale pid file (a process that is gone) does not stop 'up'.
        (home / "emulator.pid").write_text("999999\n")
        restarted = starting(stacks, "local", "up", home=home)
        assert restarted.returncode == 0, restarted.stderr
        # The servers come back on their ports, so stored URLs stay valid.
        assert StackOutputs.read(home / "outputs.json") == outputs

        # With no stack given, a job runs on the local stack: as it is when it runs...
        sample = str(ROOT / "data" / "taskdata3.txt")
        used = starting(stacks, "submit", sample, "--json", home=home)
        assert used.returncode == 0, used.stderr
        assert "not running" not in used.stderr
        # ...and started first when it is not.
        runner("local", "down", home=home)
        started = starting(stacks, "submit", sample, "--json", home=home)
        assert started.returncode == 0, started.stderr
        assert "the local stack is not running: starting it" in started.stderr
        assert "starting the Batch emulator" in started.stderr
        assert json.loads(started.stdout)["succeeded"] is True
    finally:
        runner("local", "down", home=home)


def test_the_local_stack_program_speaks_json(tmp_path: Path):
    """`python -m local_stack status --json` (and `outputs`) when nothing runs: exit 3 and
    nulls."""
    asked = subprocess.run(
        [sys.executable, "-m", "local_stack", "outputs"],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNNER_LOCAL_DIR": str(tmp_path / "local")},
        timeout=60,
    )
    assert asked.returncode == 3
    assert json.loads(asked.stdout)["outputs"] is None
    result = subprocess.run(
        [sys.executable, "-m", "local_stack", "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNNER_LOCAL_DIR": str(tmp_path / "local")},
        timeout=60,
    )
    assert result.returncode == 3
    assert json.loads(result.stdout) == {
        "azurite": None,
        "emulator": None,
        "nodes": {},
        "fault_proxy": None,
        "faults": None,
        "quotas": {"core": None, "pool": None},
        "autoscale": None,
        "outputs": None,
    }


def test_nodes_run_the_interpreter_a_shim_would_start(tmp_path: Path, monkeypatch):
    """A version manager's python3 shim (pyenv's) is resolved once, when the emulator
    starts: the nodes find the interpreter itself first on their PATH, as a node does."""
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3"
    shim.write_text(f'#!/bin/sh\nexec "{os.path.realpath(sys.executable)}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}/usr/bin{os.pathsep}/bin")
    first, *rest = servers.nodes_path().split(os.pathsep)
    assert first == str(Path(os.path.realpath(sys.executable)).parent)
    assert rest == [str(shims), "/usr/bin", "/bin"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no python3 at all: as it was
    assert servers.nodes_path() == str(tmp_path / "empty")
