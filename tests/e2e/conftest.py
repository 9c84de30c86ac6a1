"""A whole local stack (Azurite, emulator, containers, pool) for the session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import ContainerClient

from contract.outputs import StackOutputs
from local_stack import stack as local_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The outputs file of a running local stack of the test session's own, its
    emulator logging each request (``logs/requests.log`` beside the outputs file)."""
    paths = local_stack.Paths(tmp_path_factory.mktemp("local-stack"))
    try:
        local_stack.up(paths=paths, log_requests=True)
        yield paths.outputs
    finally:
        local_stack.down(paths)


@pytest.fixture(scope="session")
def stack_outputs(stack: Path) -> StackOutputs:
    return StackOutputs.read(stack)


def batch_client(outputs: StackOutputs) -> BatchClient:
    """The local stack's Batch account, signed with its key."""
    assert outputs.local is not None
    return BatchClient(
        outputs.batchAccountEndpoint,
        AzureNamedKeyCredential(outputs.batchAccountName, outputs.local.batchAccountKey),
    )


def container_client(outputs: StackOutputs, name: str) -> ContainerClient:
    """One of the local stack's containers, signed with its storage key."""
    assert outputs.local is not None
    return ContainerClient(
        outputs.blobEndpoint,
        name,
        credential={
            "account_name": outputs.storageAccountName,
            "account_key": outputs.local.storageAccountKey,
        },
    )


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
