"""Real clients' requests, recorded once and replayed: the Azure CLI's ``az batch`` commands
and Microsoft's Python quickstart flow as azure-batch 11.0 to 14.2 and 15.0.0b2 send it
(API versions 2021-06-01.14.0 to 2024-07-01.20.0; the suite's own azure-batch 15.1 sends
2025-06-01), so no test needs the CLI or an old SDK installed.

The fixtures in ``recorded/`` were captured with tools/record_requests.py in front of the
emulator (the clients installed in a throw-away environment): each request's method,
path, api-version, body and the status it was answered with. The replay sends each again,
signed with the emulator's key, its ids (``{pool}``, ``{job}``...) made unique, and checks
the status and error code. A client that polled for tasks to complete is replayed by
waiting for them before it reads their files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from tests.emulator.conftest import client_for, unique, wait_for
from tests.emulator.fakes import FakeClock, FakeExecutor
from tests.emulator.inprocess import serve

RECORDED = Path(__file__).parent / "recorded"
SDKS = sorted(path.name for path in RECORDED.glob("azure_batch_*.json"))


def _commands(name: str) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = json.loads((RECORDED / name).read_text())["commands"]
    return commands


class Replay:
    """Sends recorded requests with the placeholders filled in."""

    def __init__(self, batch: BatchClient) -> None:
        self.batch = batch
        self.ids = {name: unique(name.replace("_", "-")) for name in ("pool", "pool_json")}
        self.ids |= {name: unique(name.replace("_", "-")) for name in ("job", "job_json")}
        self.ids["schedule"] = unique("schedule")

    def fill(self, text: str) -> str:
        for name, value in self.ids.items():
            text = text.replace("{" + name + "}", value)
        if "{node}" in text:
            text = text.replace("{node}", self._node())
        return text

    def _node(self) -> str:
        if "node" not in self.ids:
            nodes = wait_for(lambda: list(self.batch.list_nodes(self.ids["pool"])))
            self.ids["node"] = str(nodes[0].id)
        return self.ids["node"]

    def send(self, recorded: dict[str, Any]) -> tuple[int, str | None]:
        path = self.fill(recorded["path"])
        body = (
            None
            if recorded["body"] is None
            else json.loads(self.fill(json.dumps(recorded["body"])))
        )
        request = HttpRequest(recorded["method"], path, params=recorded["query"], json=body)
        if body is not None:
            request.headers["Content-Type"] = "application/json; odata=minimalmetadata"
        try:
            response = self.batch.send_request(request, stream=True)  # files too
        except HttpResponseError as error:
            if error.response is None:  # no answer at all: not a status to compare
                raise
            response = error.response
        response.read()
        code = response.json().get("code") if response.status_code >= 400 else None
        return response.status_code, code

    def play(
        self, commands: list[dict[str, Any]], after: Callable[[str], None] = lambda _: None
    ) -> None:
        for command in commands:
            for recorded in command["requests"]:
                if "/files/" in recorded["path"]:
                    self._wait_for_tasks(recorded["path"])
                answer = self.send(recorded)
                if (recorded["method"], recorded["path"]) == ("DELETE", "/pools/{pool}"):
                    self.ids.pop("node", None)  # a pool of that id again has other nodes
                assert answer == (recorded["status"], recorded["code"]), (
                    f"{command['command']}: {recorded['method']} {recorded['path']}"
                )
            after(command["command"])

    def _wait_for_tasks(self, path: str) -> None:
        """The client polled its job's tasks until they completed: so does the replay."""
        job_id = self.fill(path).split("/")[2]
        wait_for(lambda: all(t.state == "completed" for t in self.batch.list_tasks(job_id)))


@pytest.mark.served  # task files need real processes
def test_the_azure_cli_commands_are_answered_as_recorded(live_batch):
    Replay(live_batch).play(_commands("azure_cli.json"))


@pytest.mark.served
@pytest.mark.parametrize("fixture", SDKS)
def test_the_quickstart_flow_of_each_older_sdk_is_answered_as_recorded(live_batch, fixture):
    Replay(live_batch).play(_commands(fixture))


def test_a_schedule_the_cli_created_creates_its_job_when_due(tmp_path):
    """``az batch job-schedule create --do-not-run-until 2030-01-01T00:00:00Z
    --recurrence-interval PT1H``: no job before then, the first on the hour, no other
    while it is active."""
    commands = {command["command"].split(" --")[0]: command for command in _commands(
        "azure_cli.json"
    )}  # fmt: skip
    clock = FakeClock(datetime(2029, 12, 31, 23, 0, tzinfo=UTC))
    with serve(tmp_path, FakeExecutor(), clock) as emulator:
        replay = Replay(client_for(emulator.url))
        replay.play([commands["az batch pool create"], commands["az batch job-schedule create"]])
        schedule = replay.ids["schedule"]

        def jobs() -> list[str]:
            return [str(job.id) for job in replay.batch.list_jobs_from_schedule(schedule)]

        assert jobs() == []
        clock.advance(timedelta(hours=1))
        assert jobs() == [f"{schedule}:job-1"]
        clock.advance(timedelta(hours=1))
        assert jobs() == [f"{schedule}:job-1"]  # job-1 is still active
        info = replay.batch.get_job_schedule(schedule).execution_info
        assert info.recent_job.id == f"{schedule}:job-1"
