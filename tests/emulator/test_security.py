"""Security rules of the emulator, each as a hostile input that must be refused.

Stale or unreadable request dates, the address it binds, resource files and output
patterns that would reach outside a task's directory, and requests over the service's
limits. In-process where the rule is the emulator's own code; the files rules run on
``Storage`` and ``matches`` directly, as no storage holds a blob named ``a/../../b``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.batch import models
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

import emulator.__main__ as emulator_main
from emulator import validate, wire
from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY
from emulator.files import Storage, matches
from tests.emulator.conftest import raises_batch_error

API = "api-version=2025-06-01"

# --- stale, future and unreadable dates --------------------------------------------------


def _date(offset: timedelta = timedelta()) -> str:
    return format_datetime(datetime.now(UTC) + offset, usegmt=True)


def _send(request: HttpRequest) -> Any:
    with RequestsTransport() as transport:
        return transport.send(request)


def _sdk_signed(url: str, headers: dict[str, str]) -> Any:
    """A GET signed by the SDK's own policy, with the headers given (ocp-date kept)."""
    request = HttpRequest("GET", url, headers=headers)
    policy = BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(DEFAULT_ACCOUNT, DEFAULT_KEY))
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    return _send(request)


def _date_signed(base: str, path: str, date: str) -> Any:
    """A GET dated by ``Date`` alone, signed by hand as the Batch docs describe it: the
    verb, eleven standard headers (Date the sixth), no ocp- headers, the resource."""
    standard = ["", "", "", "", "", date, "", "", "", "", ""]
    version = API.split("=")[1]
    text = "GET\n" + "\n".join(standard) + f"\n/{DEFAULT_ACCOUNT}{path}\napi-version:{version}"
    digest = hmac.new(base64.b64decode(DEFAULT_KEY), text.encode(), hashlib.sha256).digest()
    authorization = f"SharedKey {DEFAULT_ACCOUNT}:{base64.b64encode(digest).decode()}"
    headers = {"Date": date, "Authorization": authorization}
    return _send(HttpRequest("GET", f"{base}{path}?{API}", headers=headers))


def _refused(response: Any, detail: str) -> None:
    assert response.status_code == 403, response.text()
    body = response.json()
    assert body["code"] == "AuthenticationFailed"
    assert detail in body["values"][0]["value"]


def test_a_request_within_the_window_is_accepted(in_process):
    url = f"{in_process.url}/pools?{API}"
    assert _sdk_signed(url, {}).status_code == 200
    assert _sdk_signed(url, {"ocp-date": _date(timedelta(minutes=-14))}).status_code == 200
    assert _sdk_signed(url, {"ocp-date": _date(timedelta(minutes=14))}).status_code == 200


@pytest.mark.parametrize(
    ("minutes", "detail"), [(-16, "too old"), (-60 * 24, "too old"), (16, "in the future")]
)
def test_a_stale_or_future_ocp_date_is_refused(in_process, minutes, detail):
    stale = _date(timedelta(minutes=minutes))
    _refused(_sdk_signed(f"{in_process.url}/pools?{API}", {"ocp-date": stale}), detail)


@pytest.mark.parametrize("text", ["yesterday", "2024-01-01T00:00:00Z", "Mon, 01 Jan 2024 00:00:00"])
def test_an_unreadable_ocp_date_is_refused(in_process, text):
    response = _sdk_signed(f"{in_process.url}/pools?{API}", {"ocp-date": text})
    _refused(response, "The Date header in the request is incorrect.")


def test_ocp_date_is_the_time_when_both_are_given(in_process):
    url = f"{in_process.url}/pools?{API}"
    old = _date(timedelta(hours=-1))
    assert _sdk_signed(url, {"ocp-date": _date(), "Date": old}).status_code == 200
    _refused(_sdk_signed(url, {"ocp-date": old, "Date": _date()}), "too old")


def test_a_request_dated_by_date_alone(in_process):
    assert _date_signed(in_process.url, "/pools", _date()).status_code == 200
    _refused(_date_signed(in_process.url, "/pools", _date(timedelta(minutes=-20))), "too old")
    _refused(_date_signed(in_process.url, "/pools", "soon"), "incorrect")


def test_a_request_without_any_date_is_refused(in_process):
    response = _send(
        HttpRequest(
            "GET",
            f"{in_process.url}/pools?{API}",
            headers={"Authorization": f"SharedKey {DEFAULT_ACCOUNT}:c2lnbmF0dXJl"},
        )
    )
    _refused(response, "no ocp-date or date header")


# --- the address it binds ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_not_exposed(host):
    assert not emulator_main.exposed(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "batch.example"])
def test_other_hosts_are_exposed(host):
    assert emulator_main.exposed(host)


def test_it_binds_loopback_unless_told_and_warns_once_when_exposed(monkeypatch, tmp_path, capsys):
    bound: list[str] = []
    monkeypatch.setattr(emulator_main.uvicorn, "run", lambda app, **kw: bound.append(kw["host"]))
    emulator_main.main(["--port", "8123", "--data", str(tmp_path / "a")])
    assert bound == ["127.0.0.1"]
    assert capsys.readouterr().err == ""
    emulator_main.main(["--port", "8123", "--data", str(tmp_path / "b"), "--host", "0.0.0.0"])
    assert bound[-1] == "0.0.0.0"
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("warning: --host 0.0.0.0 is not a loopback address")


# --- resource files and output patterns stay in the task's directory ----------------------


@pytest.mark.parametrize(
    "file_path", ["../escape", "in/../../escape", "/tmp/escape", "\\tmp\\escape", "..\\escape"]
)
def test_a_resource_file_path_out_of_the_working_directory_is_400(batch, job, file_path):
    for source in (
        {"http_url": "http://127.0.0.1:1/c/a.txt"},
        {"storage_container_url": "http://127.0.0.1:1/c"},
    ):
        files = [models.ResourceFile(file_path=file_path, **source)]
        raises_batch_error(
            lambda files=files: batch.create_task(
                job,
                models.BatchTaskCreateOptions(
                    id="escape", command_line="/bin/true", resource_files=files
                ),
            ),
            400,
            "InvalidPropertyValue",
        )


class _Container:
    """A container whose blobs have the names given, which no real storage keeps."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def list_blobs(self, name_starts_with: str | None = None) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=name) for name in self.names]

    def download_blob(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(readall=lambda: f"from {name}".encode())


def _task_directory(tmp_path: Path) -> Path:
    working = tmp_path / "node" / "task" / "wd"
    working.mkdir(parents=True)
    return working


@pytest.mark.parametrize(
    ("file_path", "blob"),
    [
        ("", "a/../../../escaped.txt"),
        ("sub", "../../../escaped.txt"),
        ("", "/" + "escaped.txt"),  # made absolute below: tmp_path / escaped.txt
        ("link", "escaped.txt"),  # a link in the working directory pointing out
    ],
)
def test_blob_names_cannot_place_a_resource_file_outside(monkeypatch, tmp_path, file_path, blob):
    working = _task_directory(tmp_path)
    (working / "link").symlink_to(tmp_path)
    if blob.startswith("/"):
        blob = str(tmp_path / blob.lstrip("/"))
    storage = Storage(None, ())
    container = _Container(["fine.txt", blob])
    monkeypatch.setattr(storage, "_container", lambda url, credential: container)
    file = {"storageContainerUrl": "http://127.0.0.1:1/c", "filePath": file_path}
    failure = storage.download([file], working)
    assert failure is not None
    assert failure.code == "ResourceFileCreateFailed"
    assert "outside the task's working directory" in (failure.message or "")
    assert not (tmp_path / "escaped.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node"]


def test_blobs_inside_are_written_below_the_file_path(monkeypatch, tmp_path):
    working = _task_directory(tmp_path)
    storage = Storage(None, ())
    container = _Container(["a/b.txt", "a/x/../c.txt"])  # a dot segment that stays inside
    monkeypatch.setattr(storage, "_container", lambda url, credential: container)
    file = {"storageContainerUrl": "http://127.0.0.1:1/c", "filePath": "in"}
    assert storage.download([file], working) is None
    assert (working / "in" / "a" / "b.txt").read_text() == "from a/b.txt"
    assert (working / "in" / "a" / "c.txt").is_file()


@pytest.fixture
def task_with_neighbours(tmp_path: Path) -> Path:
    """A working directory, its task's logs, and secrets beside and far above it."""
    working = _task_directory(tmp_path)
    (working / "result.txt").write_text("mine")
    (working.parent / "stdout.txt").write_text("out")
    (working.parent.parent / "other-task.txt").write_text("a neighbour's")
    (tmp_path / "secret.txt").write_text("secret")
    (working / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (working / "far").symlink_to(tmp_path)
    return working


@pytest.mark.parametrize(
    "pattern",
    [
        "../../other-task.txt",
        "../../*.txt",
        "../../../secret.txt",
        "../../../*",
        "../../**/*",
        "{root}/secret.txt",
        "{root}/*",
        "leak.txt",
        "far/secret.txt",
        "far/*",
    ],
)
def test_output_patterns_select_nothing_outside_the_task_directory(task_with_neighbours, pattern):
    root = task_with_neighbours.parent.parent.parent
    found = matches(pattern.format(root=root), task_with_neighbours, None)
    task_directory = task_with_neighbours.parent.resolve()
    assert all(path.resolve().is_relative_to(task_directory) for path, _ in found), found


def test_output_patterns_still_reach_the_task_directory(task_with_neighbours):
    names = sorted(name for _, name in matches("../std*.txt", task_with_neighbours, "logs"))
    assert names == ["logs/stdout.txt"]
    everything = sorted(name for _, name in matches("**/*", task_with_neighbours, None))
    assert everything == ["result.txt"]


# --- requests over the service's limits ---------------------------------------------------


def _padded(task_id: str, size: int) -> models.BatchTaskCreateOptions:
    """A task whose body is about ``size`` bytes, all in one environment setting."""
    setting = models.EnvironmentSetting(name="PAD", value="x" * size)
    return models.BatchTaskCreateOptions(
        id=task_id, command_line="/bin/true", environment_settings=[setting]
    )


def test_a_body_over_the_limit_is_413_request_body_too_large(batch, job):
    big = _padded("big", wire.MAX_BODY_BYTES)
    raises_batch_error(lambda: batch.create_task(job, big), 413, "RequestBodyTooLarge")
    group = models.BatchTaskGroup(task_values=[_padded(f"t{i}", 20_000) for i in range(60)])
    raises_batch_error(lambda: batch.create_task_collection(job, group), 413, "RequestBodyTooLarge")
    assert list(batch.list_tasks(job)) == []


def test_the_sdk_splits_a_collection_the_emulator_finds_too_large(batch, job):
    statuses: list[int] = []
    tasks = [_padded(f"t{i:03d}", 20_000) for i in range(100)]  # about 2 MB in one chunk
    result = batch.create_tasks(
        job,
        tasks,
        raw_response_hook=lambda response: statuses.append(response.http_response.status_code),
    )
    assert 413 in statuses  # the emulator refused the whole chunk first
    assert sorted(r.task_id for r in result.result_values) == [t.id for t in tasks]
    assert all(r.status == "success" for r in result.result_values)
    assert len(list(batch.list_tasks(job, select=["id"]))) == 100


def test_a_command_line_over_the_limit_is_invalid(batch, job):
    limit = validate.MAX_COMMAND_LINE
    longest = "/bin/true " + "x" * (limit - len("/bin/true "))
    batch.create_task(job, models.BatchTaskCreateOptions(id="longest", command_line=longest))
    error = raises_batch_error(
        lambda: batch.create_task(
            job, models.BatchTaskCreateOptions(id="too-long", command_line=longest + "x")
        ),
        400,
        "InvalidPropertyValue",
    )
    assert error.error is not None
    values = {detail.code: detail.message for detail in error.error.details}
    assert values["PropertyName"] == "commandLine"
    group = models.BatchTaskGroup(
        task_values=[models.BatchTaskCreateOptions(id="in-group", command_line=longest + "x")]
    )
    (result,) = batch.create_task_collection(job, group).result_values
    assert (result.status, result.error.code) == ("clienterror", "InvalidPropertyValue")
