"""The local stack, driven as the program it is (``python -m local_stack``).

The runner never imports it: ``python -m runner local up|down|status`` hands the
command line over, and a job with no stack given asks it for its outputs, starting it
first if it is not running.
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


def outputs(log: Callable[[str], None]) -> StackOutputs:
    """The running local stack's outputs; the stack is started (and provisioned) first
    if a server is down, its progress shown on stderr as it comes."""
    found = subprocess.run(_command("status", "--json"), capture_output=True, text=True)
    with_outputs = json.loads(found.stdout or "{}").get("outputs")
    if found.returncode == 0 and with_outputs:
        return StackOutputs.read(Path(with_outputs))
    log("the local stack is not running: starting it (python -m runner local up)")
    started = subprocess.run(_command("up", "--json"), stdout=subprocess.PIPE, text=True)
    if started.returncode != 0:
        raise OutputsError("the local stack did not start (its error is above)")
    return StackOutputs.from_dict(json.loads(started.stdout), "the local stack")
