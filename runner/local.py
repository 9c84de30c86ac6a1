"""The local stack, driven as the program it is (``python -m local_stack``).

The runner never imports it: ``python -m runner local up|down|status`` hands the
command line over, and a job with no stack given asks it for its outputs, starting it
first if it is not running (``doctor`` asks without starting it: ``LocalStackDown``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from contract.outputs import OutputsError, StackOutputs


def _command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "local_stack", *arguments]


def run(*arguments: str) -> int:
    """Run a local-stack command with this terminal; returns its exit status."""
    return subprocess.call(_command(*arguments))


class LocalStackDown(OutputsError):
    """The local stack is not running, and was not to be started."""


def outputs(log: Callable[[str], None], start: bool = True) -> StackOutputs:
    """The running local stack's outputs; the stack is started (and provisioned) first
    if a server is down, its progress shown on stderr as it comes. With ``start`` false,
    a stack that is down is ``LocalStackDown``, saying which servers are stopped."""
    found = subprocess.run(_command("outputs"), capture_output=True, text=True)
    try:
        state = json.loads(found.stdout or "{}")
    except ValueError:
        state = {}
    with_outputs = state.get("outputs")
    if found.returncode == 0 and with_outputs:
        return StackOutputs.read(Path(with_outputs))
    if not start:
        raise LocalStackDown(_down_detail(state))
    log("the local stack is not running: starting it (python -m runner local up)")
    started = subprocess.run(_command("up", "--json"), stdout=subprocess.PIPE, text=True)
    if started.returncode != 0:
        raise OutputsError("the local stack did not start (its error is above)")
    return StackOutputs.from_dict(json.loads(started.stdout), "the local stack")


def _down_detail(state: dict[str, object]) -> str:
    """``the local stack is not running (azurite and emulator stopped)``, from its status."""
    servers = ["azurite", "emulator"] + (["fault_proxy"] if state.get("faults") else [])
    stopped = [name.replace("_", " ") for name in servers if state.get(name) is None]
    if not state or not stopped:
        return "the local stack is not running"
    return f"the local stack is not running ({' and '.join(stopped)} stopped)"
