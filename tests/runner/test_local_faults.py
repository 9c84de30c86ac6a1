"""`python -m runner local up --faults RATE`: faults on, shown, and off again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from contract.outputs import StackOutputs
from tests.runner.test_local import runner, starting
from tests.stacks import Stacks

pytestmark = pytest.mark.e2e  # starts local stacks with `runner local up`


def stack_status(home: Path) -> dict[str, Any]:
    """`python -m local_stack status --json`, the document the runner reads."""
    found = subprocess.run(
        [sys.executable, "-m", "local_stack", "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNNER_LOCAL_DIR": str(home)},
        timeout=60,
    )
    document: dict[str, Any] = json.loads(found.stdout)
    return document


@pytest.mark.emulator_only("starts a local stack of its own, with faults")
def test_faults_on_then_off_keep_the_blob_endpoint(stacks: Stacks, tmp_path: Path):
    home = tmp_path / "local"
    try:
        on = starting(stacks, "local", "up", "--faults", "0.1", "--fault-seed", "1", home=home)
        assert on.returncode == 0, on.stderr
        assert "starting the fault proxy" in on.stderr
        outputs = StackOutputs.read(home / "outputs.json")
        storage_port = int(outputs.blobEndpoint.split(":")[2].split("/")[0])
        log = home / "logs" / "faults.log"
        assert f"Faults:  0.1 of requests (all kinds), seed 1, logged to {log}" in on.stdout

        shown = runner("local", "status", home=home)
        assert shown.returncode == 0, shown.stderr
        assert f"proxy     running on http://127.0.0.1:{storage_port}" in shown.stdout
        assert f"faults    0.1 of requests (all kinds), seed 1, logged to {log}" in shown.stdout
        state = stack_status(home)
        assert state["faults"] == {"rate": 0.1, "seed": 1, "kinds": None, "log": str(log)}
        assert state["fault_proxy"] == storage_port != state["azurite"]

        again = starting(stacks, "local", "up", "--faults", "0.1", home=home)  # no restart
        assert again.returncode == 0, again.stderr
        assert "start" not in again.stderr

        off = starting(stacks, "local", "up", home=home)
        assert off.returncode == 0, off.stderr
        assert "stopping the fault proxy" in off.stderr
        assert "Faults:" not in off.stdout
        assert StackOutputs.read(home / "outputs.json") == outputs  # the same URLs
        state = stack_status(home)
        assert state["faults"] is None
        assert state["fault_proxy"] is None
        assert state["azurite"] == storage_port  # Azurite itself, on the stack's port
        shown = runner("local", "status", home=home)
        assert "faults    off" in shown.stdout
        assert "proxy" not in shown.stdout
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={outputs.storageAccountName};"
            f"AccountKey={outputs.local.storageAccountKey};BlobEndpoint={outputs.blobEndpoint};"
        )
        with BlobServiceClient.from_connection_string(connection) as blobs:
            assert {"application", "input", "output"} <= {c.name for c in blobs.list_containers()}
    finally:
        runner("local", "down", home=home)
