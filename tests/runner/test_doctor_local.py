"""`runner doctor` with no server: a local stack that is down is a FAIL with its fix and
is not started; the probe's times at the precision they have; the local quota's fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contract import local as local_keys
from contract.outputs import ContainerNames, LocalKeys, StackOutputs
from runner import doctor, local
from runner.clients import Clients

OUTPUTS = StackOutputs(
    location="local",
    resourceGroupName="local",
    storageAccountName=local_keys.STORAGE_ACCOUNT,
    blobEndpoint="http://127.0.0.1:1/devstoreaccount1",
    containers=ContainerNames("application", "input", "output"),
    batchAccountName=local_keys.BATCH_ACCOUNT,
    batchAccountEndpoint="http://127.0.0.1:2",
    poolId="runner-pool",
    poolIdentityResourceId=None,
    local=LocalKeys(local_keys.BATCH_KEY, local_keys.STORAGE_KEY),
)


def test_a_local_stack_that_is_down_is_a_fail_and_is_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "local"
    monkeypatch.setenv("RUNNER_LOCAL_DIR", str(home))
    said: list[str] = []
    checks = list(doctor.run(doctor.loader(None, None, said.append), probe=True))
    assert [check.line() for check in checks] == [
        "FAIL local stack: the local stack is not running (azurite and emulator stopped) "
        "-> start it: python -m runner local up"
    ]
    assert doctor.as_document(checks)["ok"] is False
    assert said == []  # no "starting it"
    assert not home.exists()  # nothing started, nothing written


def test_which_servers_of_the_local_stack_are_down():
    assert local._down_detail({"azurite": 10, "emulator": None, "faults": None}) == (
        "the local stack is not running (emulator stopped)"
    )
    with_faults = {"azurite": 10, "emulator": 11, "fault_proxy": None, "faults": {"rate": 0.1}}
    assert local._down_detail(with_faults) == (
        "the local stack is not running (fault proxy stopped)"
    )
    assert local._down_detail({}) == "the local stack is not running"


def test_durations_show_the_precision_they_have():
    assert doctor.seconds(0.0) == "0.0 ms"
    assert doctor.seconds(0.00042) == "0.4 ms"
    assert doctor.seconds(0.0123) == "12 ms"
    assert doctor.seconds(0.9994) == "999 ms"
    assert doctor.seconds(2.414) == "2.41 s"
    assert doctor.seconds(412.3) == "412 s"


class ProbeBatch:
    """A Batch account whose node takes the probe 12 ms after it is added and runs it
    in 3.5 ms."""

    def __init__(self) -> None:
        created = datetime(2025, 1, 1, tzinfo=UTC)
        started = created + timedelta(milliseconds=12)
        self.task = SimpleNamespace(
            state="completed",
            creation_time=created,
            execution_info=SimpleNamespace(
                exit_code=0,
                start_time=started,
                end_time=started + timedelta(microseconds=3500),
                failure_info=None,
            ),
        )

    def create_job(self, job: Any) -> None:
        pass

    def create_task(self, job_id: str, task: Any) -> None:
        pass

    def get_task(self, job_id: str, task_id: str) -> Any:
        return self.task

    def begin_delete_job(self, job_id: str) -> None:
        pass


def test_the_probe_says_its_times_in_milliseconds_under_a_second():
    clients = Clients(batch=ProbeBatch(), blobs=None, outputs=OUTPUTS)  # type: ignore[arg-type]
    check = doctor._probe(clients, clock=lambda: 0.0)
    assert check.line() == "ok   probe: a node took the task after 12 ms; it ran 3.5 ms"


def test_a_core_quota_on_the_local_stack_is_lifted_by_local_up():
    assert "python -m runner local up" in doctor._resize_fix("AccountCoreQuotaReached", True)
    assert "Azure portal" in doctor._resize_fix("AccountCoreQuotaReached")
