"""Where the stack outputs come from: a Pulumi stack, a file, or the local stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from contract.outputs import OutputsError, StackOutputs
from runner import local


def pulumi_outputs(stack: str) -> StackOutputs:
    """Read a Pulumi stack's outputs with the pulumi CLI."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise OutputsError("the pulumi CLI is not on PATH; install it, or pass --outputs FILE")
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no detail"])[-1]
        raise OutputsError(f"pulumi could not read stack {stack!r}: {detail}")
    try:
        document = json.loads(result.stdout)
    except ValueError:
        raise OutputsError(f"pulumi printed no JSON for stack {stack!r}") from None
    return StackOutputs.from_dict(document, f"stack {stack}")


def resolve(
    stack: str | None,
    outputs_file: Path | None,
    log: Callable[[str], None] = print,
    start: bool = True,
) -> StackOutputs:
    """The outputs of the stack given, else of the local stack: started first if it is
    down, unless ``start`` is false (``doctor``), which has ``local.LocalStackDown``."""
    if stack and outputs_file:
        raise OutputsError("give --stack or --outputs, not both")
    if stack:
        return pulumi_outputs(stack)
    if outputs_file:
        return StackOutputs.read(outputs_file)
    return local.outputs(log, start=start)
