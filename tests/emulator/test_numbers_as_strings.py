"""Integer properties sent as JSON strings of digits, as the Azure CLI sends them
(``az batch pool create --target-dedicated-nodes 1``): taken, stored and returned as
numbers; anything else in their place refused as before."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from emulator.numbers import numbers
from tests.emulator.conftest import unique

VERSION = "api-version=2024-02-01.19.0"  # what azure-cli 2.91 sends


def _send(batch: BatchClient, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = HttpRequest(method, f"{path}?{VERSION}", json=body)
    if body is not None:
        request.headers["Content-Type"] = "application/json; odata=minimalmetadata"
    return batch.send_request(request)


def test_strings_of_digits_are_numbers_and_other_strings_stay():
    body = {
        "targetDedicatedNodes": "1",
        "priority": "-5",
        "constraints": {"maxTaskRetryCount": "2"},
        "exitConditions": {"exitCodeRanges": [{"start": "1", "end": "3"}]},
        "displayName": "7",  # not an integer property: a name stays a name
        "maxParallelTasks": "two",  # not digits: left for validation to refuse
    }
    assert numbers(body) == {
        "targetDedicatedNodes": 1,
        "priority": -5,
        "constraints": {"maxTaskRetryCount": 2},
        "exitConditions": {"exitCodeRanges": [{"start": 1, "end": 3}]},
        "displayName": "7",
        "maxParallelTasks": "two",
    }


def test_the_clis_pool_job_and_task_are_taken_and_answer_numbers(batch, pool):
    pool_id = unique("cli-pool")
    created = _send(batch, "POST", "/pools", {
        "id": pool_id, "vmSize": "standard_d2s_v5", "targetDedicatedNodes": "0",
        "taskSlotsPerNode": "2",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                               "sku": "server", "version": "latest"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
    })  # fmt: skip
    assert created.status_code == 201, created.text()
    shown = _send(batch, "GET", f"/pools/{pool_id}").json()
    assert (shown["targetDedicatedNodes"], shown["taskSlotsPerNode"]) == (0, 2)

    job_id = unique("cli-job")
    job = {"id": job_id, "poolInfo": {"poolId": pool}, "priority": "5", "maxParallelTasks": "2"}
    assert _send(batch, "POST", "/jobs", job).status_code == 201
    shown = _send(batch, "GET", f"/jobs/{job_id}").json()
    assert (shown["priority"], shown["maxParallelTasks"]) == (5, 2)
    task = {"id": "t1", "commandLine": "/bin/true", "constraints": {"maxTaskRetryCount": "2"}}
    assert _send(batch, "POST", f"/jobs/{job_id}/tasks", task).status_code == 201
    assert batch.get_task(job_id, "t1").constraints.max_task_retry_count == 2

    with pytest.raises(HttpResponseError) as refused:  # not digits: refused as before
        _send(batch, "POST", "/jobs", {**job, "id": unique("cli-bad"), "priority": "high"})
    assert refused.value.status_code == 400
    assert "InvalidPropertyValue" in str(refused.value)
    _send(batch, "DELETE", f"/jobs/{job_id}")
    _send(batch, "DELETE", f"/pools/{pool_id}")
