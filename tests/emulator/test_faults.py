"""Fault injection: each kind on its own, on the emulator (Batch) and the fault proxy
(storage, in front of the session's Azurite), driven by the official SDKs or a socket."""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, LinearRetry

from contract import local as local_keys
from emulator.app import Settings, create_app
from emulator.faults import FaultInjector, Faults
from local_stack import servers
from tests.emulator.conftest import client_for, raises_batch_error

pytestmark = pytest.mark.served  # real processes, storage or authentication

VERSION = "api-version=2025-06-01"


@contextmanager
def emulator_with(
    directory: Path, *kinds: str, rate: float = 1, seed: int = 7
) -> Iterator[tuple[servers.Server, Path]]:
    """An emulator of its own, failing ``rate`` of the requests in the given kinds."""
    log = directory / "faults.log"
    faults = servers.Faults(rate, seed, log, kinds)
    server = servers.start_emulator(directory / "state", directory / "emulator.log", faults=faults)
    try:
        yield server, log
    finally:
        servers.stop(server)


@contextmanager
def proxy_with(
    directory: Path, target: int, *kinds: str, rate: float = 1, seed: int = 7
) -> Iterator[tuple[servers.Server, Path]]:
    log = directory / "faults.log"
    faults = servers.Faults(rate, seed, log, kinds)
    server = servers.start_fault_proxy(target, faults, directory / "proxy.log")
    try:
        yield server, log
    finally:
        servers.stop(server)


def logged(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a socket of its own; every byte back until the server closes
    (a reset raises ConnectionResetError)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


# --- the emulator ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"), [("500", "InternalError"), ("503", "ServerBusy"), ("429", "TooManyRequests")]
)
def test_an_error_status_is_the_services_answer(tmp_path, kind, code):
    with emulator_with(tmp_path, kind) as (server, log):
        batch = client_for(server.url, retry_total=0)
        error = raises_batch_error(lambda: batch.get_pool("some-pool"), int(kind), code)
        assert error.response is not None
        assert error.response.headers.get("Retry-After") == ("1" if kind == "429" else None)
        assert error.response.headers["request-id"]
    # The path, never the query (a SAS may be in one) nor a header.
    assert logged(log) == [f"{kind} GET /pools/some-pool"]


def test_a_reset_is_a_tcp_reset_before_any_byte(tmp_path):
    with emulator_with(tmp_path, "reset") as (server, log):
        with pytest.raises(ConnectionResetError):
            raw_exchange(server.port, f"GET /pools?{VERSION} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        with pytest.raises(httpx.ReadError):
            httpx.get(f"{server.url}/jobs?{VERSION}")
    assert logged(log) == ["reset GET /pools", "reset GET /jobs"]


def test_a_cut_sends_the_headers_and_half_the_body_then_closes(tmp_path):
    with emulator_with(tmp_path, "cut") as (server, log):
        received = raw_exchange(
            server.port, f"GET /pools?{VERSION} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )  # a FIN, not a reset: recv returned b""
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 403 ")  # handled: no signature, so refused
        length = next(
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if b"content-length:" in line
        )
        assert length > 0
        assert len(body) == length // 2
        with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
            httpx.get(f"{server.url}/jobs?{VERSION}")
        # A response with no body to cut is dropped whole.
        nothing = raw_exchange(
            server.port, f"HEAD /pools/p?{VERSION} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert nothing == b""
    assert logged(log) == ["cut GET /pools", "cut GET /jobs", "cut HEAD /pools/p"]


def _tasks(count: int) -> list[models.BatchTaskCreateOptions]:
    return [
        models.BatchTaskCreateOptions(id=f"task-{index:03}", command_line="/bin/true")
        for index in range(count)
    ]


def _job(batch) -> str:
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    pool = models.BatchPoolInfo(pool_id="no-such-pool")  # the tasks wait: nothing runs
    batch.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=pool))
    return job_id


def test_a_partial_failure_adds_only_the_tasks_reported_added(tmp_path):
    with emulator_with(tmp_path, "partial") as (server, log):
        batch = client_for(server.url, retry_total=0)
        job_id = _job(batch)  # not a collection: no fault of kind partial applies
        answer = batch.create_task_collection(job_id, models.BatchTaskGroup(task_values=_tasks(10)))
        by_status: dict[str, set[str]] = {}
        for result in answer.result_values or []:
            by_status.setdefault(result.status.lower(), set()).add(result.task_id)
            if result.status.lower() == "servererror":
                assert result.error is not None
                assert result.error.code == "ServerBusy"
        assert set(by_status) == {"success", "servererror"}
        assert by_status["success"] | by_status["servererror"] == {
            f"task-{i:03}" for i in range(10)
        }
        added = {task.id for task in batch.list_tasks(job_id)}
        assert added == by_status["success"]
    assert logged(log) == [f"partial POST /jobs/{job_id}/addtaskcollection"]


def test_create_tasks_retries_server_errors_until_each_task_is_added_once(tmp_path):
    with emulator_with(tmp_path, "partial", rate=0.5, seed=3) as (server, log):
        batch = client_for(server.url, retry_total=0)
        job_id = _job(batch)
        results = batch.create_tasks(job_id, _tasks(250)).result_values or []
        assert sorted(result.task_id for result in results) == [f"task-{i:03}" for i in range(250)]
        assert {result.status.lower() for result in results} == {"success"}
        listed = [task.id for task in batch.list_tasks(job_id)]
        assert sorted(listed) == [f"task-{i:03}" for i in range(250)]  # each once
    assert logged(log), "no partial failure was drawn: the test shows nothing"
    assert {line.split()[0] for line in logged(log)} == {"partial"}


def _statuses(url: str, count: int) -> list[int]:
    return [httpx.get(f"{url}/pools/p{index}?{VERSION}").status_code for index in range(count)]


def test_the_same_seed_gives_the_same_faults(tmp_path):
    runs = []
    for name, seed in (("first", 11), ("again", 11), ("other", 12)):
        directory = tmp_path / name
        with emulator_with(directory, "500", "503", rate=0.5, seed=seed) as (server, log):
            runs.append((_statuses(server.url, 40), logged(log)))
    (first, first_log), (again, again_log), (other, _) = runs
    assert first == again
    assert first_log == again_log
    assert {500, 503, 403} <= set(first)  # faults, and requests handled (no signature)
    assert other != first


def test_at_rate_zero_there_is_no_middleware_and_no_fault(tmp_path):
    assert create_app(Settings(data=tmp_path / "a", faults=Faults(0, 1))).user_middleware == []
    faulty = create_app(Settings(data=tmp_path / "b", faults=Faults(0.5, 1)))
    assert [entry.cls for entry in faulty.user_middleware] == [FaultInjector]
    with emulator_with(tmp_path / "c", rate=0) as (server, log):
        assert set(_statuses(server.url, 50)) == {403}
    assert not log.exists()


# --- the fault proxy, in front of Azurite --------------------------------------------------


def _storage(port: int, **options) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        servers.azurite_connection_string(port), **options
    )


def test_the_proxy_passes_requests_through_unchanged(tmp_path, azurite):
    """SharedKey signatures cover method, path, query and headers (Host too): any change
    on the way and Azurite refuses the request."""
    with proxy_with(tmp_path, azurite.port, rate=0) as (proxy, log):
        blobs = _storage(proxy.port)
        container = blobs.create_container(f"proxy{uuid.uuid4().hex[:8]}")
        names = ["plain.txt", "with space/and+plus%.txt", "ünï/cödé.bin", "q'(x)!*.dat"]
        for index, name in enumerate(names):
            container.upload_blob(name, name.encode() * (index + 1), metadata={"n": str(index)})
        for index, name in enumerate(names):
            blob = container.get_blob_client(name)
            assert blob.download_blob().readall() == name.encode() * (index + 1)
            assert blob.get_blob_properties().metadata == {"n": str(index)}  # a HEAD
        assert sorted(blob.name for blob in container.list_blobs()) == sorted(names)
        big = bytes(range(256)) * 20_000  # several blocks, streamed both ways
        chunked = _storage(proxy.port, max_block_size=1 << 20, max_single_put_size=1 << 20)
        chunked.get_container_client(container.container_name).upload_blob("big", big)
        assert container.download_blob("big", max_concurrency=2).readall() == big
        container.delete_container()
    assert not log.exists()


def test_storage_faults_are_storage_errors(tmp_path, azurite):
    with (
        proxy_with(tmp_path, azurite.port, "503") as (proxy, log),
        pytest.raises(HttpResponseError) as caught,
    ):
        _storage(proxy.port, retry_total=0).create_container("never")
    assert caught.value.status_code == 503
    assert caught.value.error_code == "ServerBusy"
    assert logged(log) == ["503 PUT /devstoreaccount1/never"]


def test_the_storage_sdk_gets_through_faults_by_retrying(tmp_path, azurite):
    fast = LinearRetry(backoff=0.05, random_jitter_range=0, retry_total=10)
    with proxy_with(tmp_path, azurite.port, rate=0.2, seed=5) as (proxy, log):
        blobs = _storage(
            proxy.port,
            retry_policy=fast,
            max_block_size=1 << 20,
            max_single_put_size=1 << 20,
            max_single_get_size=1 << 20,
            max_chunk_get_size=1 << 20,
        )
        container = blobs.create_container(f"faults{uuid.uuid4().hex[:8]}")
        for index in range(20):
            data = f"blob {index}\n".encode() * 1000
            container.upload_blob(f"blob-{index}.txt", data, overwrite=True)
            assert container.download_blob(f"blob-{index}.txt").readall() == data
        big = bytes(range(256)) * 12_000  # three blocks up, three ranges down
        container.upload_blob("big", big, overwrite=True, max_concurrency=3)
        assert container.download_blob("big", max_concurrency=3).readall() == big
    lines = logged(log)
    kinds = Counter(line.split()[0] for line in lines)
    assert set(kinds) == {"500", "503", "reset", "cut"}, kinds  # 429: storage sends none
    assert all("?" not in line and local_keys.STORAGE_KEY not in line for line in lines)
