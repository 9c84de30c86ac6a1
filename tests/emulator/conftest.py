"""One emulator for the whole test session, driven only through the official SDK."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY
from local_stack import servers

POOL_IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/pool-identity"
)


@pytest.fixture(scope="session")
def emulator(
    tmp_path_factory: pytest.TempPathFactory, storage_connection: str
) -> Iterator[servers.Server]:
    data = tmp_path_factory.mktemp("emulator")
    server = servers.start_emulator(
        data / "state",
        data / "emulator.log",
        identities=(POOL_IDENTITY,),
        storage=storage_connection,
    )
    try:
        yield server
    finally:
        servers.stop(server)


def client_for(
    url: str, key: str = DEFAULT_KEY, account: str = DEFAULT_ACCOUNT, **options: Any
) -> BatchClient:
    return BatchClient(url, AzureNamedKeyCredential(account, key), **options)


@pytest.fixture(scope="session")
def batch(emulator: servers.Server) -> BatchClient:
    return client_for(emulator.url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pool_options(pool_id: str, **overrides: Any) -> models.BatchPoolCreateOptions:
    settings: dict[str, Any] = {
        "id": pool_id,
        "vm_size": "standard_d2s_v3",
        "virtual_machine_configuration": models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(
                publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
            ),
            node_agent_sku_id="batch.node.ubuntu 24.04",
        ),
        "target_dedicated_nodes": 1,
        "task_slots_per_node": 4,
    }
    settings.update(overrides)
    return models.BatchPoolCreateOptions(**settings)


def wait_for(condition: Callable[[], Any], timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll until condition() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def pool(batch: BatchClient) -> str:
    """A shared pool of one idle node with four slots."""
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id))
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(pool_id)))
    return pool_id


@pytest.fixture
def job(batch: BatchClient, pool: str) -> str:
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool))
    )
    return job_id


def wait_for_task(batch: BatchClient, job_id: str, task_id: str, timeout: float = 20) -> Any:
    return wait_for(
        lambda: (t := batch.get_task(job_id, task_id)).state == "completed" and t, timeout
    )


def read_file(batch: BatchClient, job_id: str, task_id: str, name: str) -> str:
    return b"".join(batch.download_task_file(job_id, task_id, name)).decode()


def raises_batch_error(call: Callable[[], Any], status: int, code: str) -> HttpResponseError:
    """Run call and check it fails with the service's status and error code."""
    with pytest.raises(HttpResponseError) as caught:
        call()
    assert caught.value.status_code == status, caught.value
    assert caught.value.error is not None, caught.value
    assert caught.value.error.code == code, caught.value
    return caught.value
