"""Two emulators for the whole test session, both driven only through the official SDK.

Most tests run against one served from inside the test process (``tests.emulator.
inprocess``) with a fake executor and a controlled clock. Tests marked ``live`` (real
processes, storage, authentication) run against a real server process started by the
local stack, with Azurite behind it. ``batch``, ``pool`` and ``job`` give each test the
one its marker asks for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobSasPermissions, ContainerClient, generate_blob_sas

from contract import local as local_keys
from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY
from local_stack import servers
from tests import stacks as counting
from tests.emulator.fakes import FakeExecutor, start_tasks_succeed, well_known_commands
from tests.emulator.inprocess import InProcess, serve

POOL_IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/pool-identity"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "served: run against a real emulator process (processes, storage, auth)"
    )


def _live(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("served") is not None


@pytest.fixture(scope="session")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """The session's in-process emulator: commands are played by well_known_commands."""
    with serve(
        tmp_path_factory.mktemp("in-process"), FakeExecutor(well_known_commands)
    ) as emulator:
        yield emulator


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
    counting.STARTED["(the served emulator of tests/emulator)"] += 1
    try:
        yield server
    finally:
        servers.stop(server)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[InProcess]:
    """An emulator of the test's own, for tests that hold tasks running: start tasks
    succeed at once, tasks run until the test finishes or kills them. A module may
    define its own."""
    with serve(tmp_path, FakeExecutor(start_tasks_succeed)) as emulator:
        yield emulator


@pytest.fixture
def client(local: InProcess) -> BatchClient:
    """An SDK client of ``local``."""
    return client_for(local.url)


def client_for(
    url: str, key: str = DEFAULT_KEY, account: str = DEFAULT_ACCOUNT, **options: Any
) -> BatchClient:
    return BatchClient(url, AzureNamedKeyCredential(account, key), **options)


@pytest.fixture(scope="session")
def live_batch(emulator: servers.Server) -> BatchClient:
    return client_for(emulator.url)


@pytest.fixture(scope="session")
def in_process_batch(in_process: InProcess) -> BatchClient:
    return client_for(in_process.url)


@pytest.fixture
def batch(request: pytest.FixtureRequest) -> BatchClient:
    client: BatchClient = request.getfixturevalue(
        "live_batch" if _live(request) else "in_process_batch"
    )
    return client


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


def _shared_pool(batch: BatchClient) -> str:
    """A shared pool of one idle node with four slots."""
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id))
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(pool_id)))
    return pool_id


@pytest.fixture(scope="session")
def live_pool(live_batch: BatchClient) -> str:
    return _shared_pool(live_batch)


@pytest.fixture(scope="session")
def in_process_pool(in_process_batch: BatchClient) -> str:
    return _shared_pool(in_process_batch)


@pytest.fixture
def pool(request: pytest.FixtureRequest) -> str:
    pool_id: str = request.getfixturevalue("live_pool" if _live(request) else "in_process_pool")
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


def blob_sas_url(container: ContainerClient, name: str) -> str:
    """A blob's URL with a read SAS for an hour, signed with Azurite's key."""
    sas = generate_blob_sas(
        local_keys.STORAGE_ACCOUNT,
        container.container_name,
        name,
        account_key=local_keys.STORAGE_KEY,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{container.url}/{name}?{sas}"
