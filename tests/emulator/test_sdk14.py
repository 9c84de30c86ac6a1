"""The core flow with azure-batch 14.2.0, the msrest-based SDK much existing code uses.

It runs in its own virtual environment (it cannot share one with 15.x), created once and
cached under .local/, so it proves the emulator's REST compatibility for api-version
2024-02-01.19.0 rather than one SDK's quirks.
"""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY
from local_stack import servers

pytestmark = pytest.mark.served  # real processes, storage or authentication

VENV = servers.ROOT / ".local" / "sdk14-venv"

SCRIPT = r"""
import json, sys, time
from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials
import azure.batch.models as m

url, account, key = sys.argv[1:4]
client = BatchServiceClient(SharedKeyCredentials(account, key), batch_url=url)
client.pool.add(m.PoolAddParameter(
    id="sdk14-pool", vm_size="standard_d2s_v3", target_dedicated_nodes=1, task_slots_per_node=2,
    virtual_machine_configuration=m.VirtualMachineConfiguration(
        image_reference=m.ImageReference(publisher="canonical", offer="ubuntu-24_04-lts",
                                         sku="server", version="latest"),
        node_agent_sku_id="batch.node.ubuntu 24.04"),
    start_task=m.StartTask(command_line="/bin/true", wait_for_success=True)))
client.job.add(m.JobAddParameter(id="sdk14-job", pool_info=m.PoolInformation(pool_id="sdk14-pool")))
tasks = [m.TaskAddParameter(id=f"t{i}", command_line=f"/bin/sh -c 'echo task {i}'")
         for i in range(3)]
added = client.task.add_collection("sdk14-job", tasks)
deadline = time.time() + 30
while time.time() < deadline:
    states = [t.state.value for t in client.task.list("sdk14-job")]
    if states and all(s == "completed" for s in states):
        break
    time.sleep(0.1)
out = b"".join(client.file.get_from_task("sdk14-job", "t1", "stdout.txt")).decode()
try:
    client.pool.get("no-such-pool")
    missing = None
except m.BatchErrorException as error:
    missing = error.error.code
counts = client.job.get_task_counts("sdk14-job")
client.job.terminate("sdk14-job")
print(json.dumps({
    "added": sorted(r.status.value for r in added.value),
    "states": states,
    "stdout": out,
    "missing": missing,
    "succeeded": counts.task_counts.succeeded,
    "job": client.job.get("sdk14-job").state.value,
    "nodes": [n.state.value for n in client.compute_node.list("sdk14-pool")],
}))
"""


@pytest.fixture(scope="session")
def sdk14_python() -> Path:
    python = VENV / "bin" / "python"
    check = [
        str(python),
        "-c",
        "import azure.batch, sys; sys.exit(azure.batch.__version__ != '14.2.0')",
    ]
    if not python.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        venv.create(VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "azure-batch==14.2.0"],
            check=True,
            timeout=600,
        )
    return python


def test_the_core_flow_with_azure_batch_14(emulator, sdk14_python):
    result = subprocess.run(
        [str(sdk14_python), "-c", SCRIPT, emulator.url, DEFAULT_ACCOUNT, DEFAULT_KEY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == ["success", "success", "success"]
    assert report["states"] == ["completed"] * 3
    assert report["stdout"] == "task 1\n"
    assert report["missing"] == "PoolNotFound"
    assert report["succeeded"] == 3
    assert report["job"] == "completed"
    assert report["nodes"] == ["idle"]
