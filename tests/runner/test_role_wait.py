"""doctor --wait-for-roles: a 403 is retried, for a bounded time, while role assignments
propagate; nothing else is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from contract.outputs import ContainerNames, StackOutputs
from runner import doctor
from runner.role_wait import RoleWait


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def refused(status: int = 403) -> HttpResponseError:
    error = HttpResponseError(message=f"{status} AuthorizationPermissionMismatch")
    error.status_code = status
    return error


def failing(times: int, status: int = 403) -> Any:
    calls = {"n": 0}

    def action() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise refused(status)
        return "answered"

    return action


def test_a_403_is_tried_again_until_the_role_has_propagated():
    time, said = FakeTime(), list[str]()
    wait = RoleWait(600, said.append, time.clock, time.sleep)
    assert wait.call(failing(4)) == "answered"
    assert time.slept == [10, 20, 30, 30]  # backing off to every 30 s
    assert len(said) == 1  # said once
    assert said[0].startswith("access refused (403): waiting up to 600 s for role assignments")


def test_the_wait_is_bounded_across_every_call():
    time = FakeTime()
    wait = RoleWait(100, lambda _: None, time.clock, time.sleep)
    with pytest.raises(HttpResponseError):
        wait.call(failing(1_000))
    assert time.now == pytest.approx(100)  # never past the limit
    with pytest.raises(HttpResponseError):  # the next call has no time left
        wait.call(failing(1))
    assert time.now == pytest.approx(100)


@pytest.mark.parametrize(("limit", "status"), [(0, 403), (600, 404), (600, 500)])
def test_no_wait_asked_or_another_failure_is_not_retried(limit, status):
    time = FakeTime()
    with pytest.raises(HttpResponseError):
        RoleWait(limit, lambda _: None, time.clock, time.sleep).call(failing(1, status))
    assert time.slept == []


class Container:
    def __init__(self, refusals: float) -> None:
        self.refusals = refusals

    def exists(self) -> bool:
        if self.refusals:
            self.refusals -= 1
            raise refused()
        return True

    def list_blobs(self) -> list[object]:
        return []

    def get_blob_client(self, name: str) -> Any:
        stored: dict[str, bytes] = {}
        return SimpleNamespace(
            upload_blob=lambda data: stored.update(blob=data),
            download_blob=lambda: SimpleNamespace(readall=lambda: stored["blob"]),
            delete_blob=lambda: stored.clear(),
        )


def test_the_doctors_storage_check_passes_once_the_role_propagated():
    containers = {name: Container(refusals=2) for name in ("application", "input", "output")}
    clients = SimpleNamespace(outputs=AZURE, container=containers.__getitem__)
    time = FakeTime()
    checks = list(doctor._storage(clients, RoleWait(600, lambda _: None, time.clock, time.sleep)))  # type: ignore[arg-type]
    assert [check.status for check in checks] == [doctor.OK, doctor.OK]
    assert time.slept  # it waited
    impatient = {name: Container(refusals=2) for name in ("application", "input", "output")}
    clients.container = impatient.__getitem__
    (failed,) = list(doctor._storage(clients, RoleWait()))  # type: ignore[arg-type]
    assert failed.status == doctor.FAIL
    assert "Storage Blob Data Contributor" in failed.fix


AZURE = StackOutputs(
    location="westeurope",
    resourceGroupName="rg",
    storageAccountName="runnerdata",
    blobEndpoint="https://runnerdata.blob.core.windows.net",
    containers=ContainerNames("application", "input", "output"),
    batchAccountName="runnerbatch",
    batchAccountEndpoint="https://runnerbatch.westeurope.batch.azure.com",
    poolId="runner-pool",
    poolIdentityResourceId="/subscriptions/s/resourceGroups/rg/x/pool-identity",
)


class Batch:
    """A Batch account that answers 403 AuthorizationFailed ``refusals`` times first."""

    def __init__(self, refusals: float) -> None:
        self.refusals = refusals
        self.calls = 0

    def get_pool(self, pool_id: str, select: list[str] | None = None) -> Any:
        self.calls += 1
        if self.refusals:
            self.refusals -= 1
            error = HttpResponseError(message="(AuthorizationFailed) not authorized")
            error.status_code = 403
            raise error
        return SimpleNamespace(
            id=pool_id,
            state="active",
            allocation_state="steady",
            current_dedicated_nodes=0,
            current_low_priority_nodes=0,
            target_dedicated_nodes=0,
            target_low_priority_nodes=0,
            vm_size="standard_d2s_v5",
            resize_errors=None,
            enable_auto_scale=False,
        )

    def list_nodes(self, pool_id: str) -> list[object]:
        return []


def doctor_of(
    monkeypatch: pytest.MonkeyPatch, batch: Batch, refusals: float
) -> dict[str, Container]:
    """The doctor on an Azure stack whose credential works, with fakes for Batch and
    storage (each container refusing ``refusals`` times)."""
    containers = {name: Container(refusals) for name in ("application", "input", "output")}
    clients = SimpleNamespace(batch=batch, outputs=AZURE, container=containers.__getitem__)
    monkeypatch.setattr(doctor, "_token", lambda: doctor.Check("credential", doctor.OK, "a token"))
    monkeypatch.setattr(doctor, "connect", lambda outputs: clients)
    return containers


def test_the_doctor_passes_once_the_batch_role_propagated(monkeypatch):
    """Batch answers 403 three times (the role assignment not in effect yet), then the
    account answers: every check ok, after three waits, said once."""
    batch = Batch(refusals=3)
    doctor_of(monkeypatch, batch, refusals=0)
    time, said = FakeTime(), list[str]()
    roles = RoleWait(600, said.append, time.clock, time.sleep)
    checks = list(doctor.run(lambda: AZURE, roles=roles))
    assert all(check.status == doctor.OK for check in checks), [c.line() for c in checks]
    assert [check.name for check in checks][:3] == ["outputs", "credential", "batch"]
    assert time.slept == [10, 20, 30]
    assert len(said) == 1
    assert "600 s" in said[0]


def test_a_role_never_granted_fails_after_the_wait_naming_the_role(monkeypatch):
    batch = Batch(refusals=float("inf"))
    doctor_of(monkeypatch, batch, refusals=0)
    time = FakeTime()
    roles = RoleWait(600, lambda _: None, time.clock, time.sleep)
    checks = list(doctor.run(lambda: AZURE, roles=roles))
    assert (checks[-1].name, checks[-1].status) == ("batch", doctor.FAIL)
    assert checks[-1].detail == "(AuthorizationFailed) not authorized"
    assert checks[-1].fix == (
        "still refused after waiting 600 s: grant the runner's identity "
        "Azure Batch Data Contributor on the Batch account runnerbatch"
    )
    assert time.now == pytest.approx(600)
    assert batch.calls > 20  # tried again every 30 s at most


def test_without_a_wait_a_403_fails_at_once_and_says_how_to_wait(monkeypatch):
    batch = Batch(refusals=1)
    doctor_of(monkeypatch, batch, refusals=0)
    checks = list(doctor.run(lambda: AZURE))
    assert checks[-1].status == doctor.FAIL
    assert batch.calls == 1
    assert "--wait-for-roles 10m" in checks[-1].fix
    assert "Azure Batch Data Contributor" in checks[-1].fix


def test_the_storage_role_never_granted_fails_after_the_wait_naming_it(monkeypatch):
    doctor_of(monkeypatch, Batch(refusals=0), refusals=float("inf"))
    time = FakeTime()
    roles = RoleWait(120, lambda _: None, time.clock, time.sleep)
    checks = list(doctor.run(lambda: AZURE, roles=roles))
    (failed,) = [check for check in checks if check.status == doctor.FAIL]
    assert (failed.name, failed.status) == ("container application", doctor.FAIL)
    assert failed.fix == (
        "still refused after waiting 120 s: grant the runner's identity "
        "Storage Blob Data Contributor on the storage account runnerdata"
    )
    assert time.now == pytest.approx(120)


def test_a_failure_other_than_a_403_is_not_waited_for(monkeypatch):
    class Down(Batch):
        def get_pool(self, pool_id: str, select: list[str] | None = None) -> Any:
            self.calls += 1
            error = HttpResponseError(message="(ServerBusy) try later")
            error.status_code = 503
            raise error

    batch = Down(refusals=0)
    doctor_of(monkeypatch, batch, refusals=0)
    time = FakeTime()
    checks = list(doctor.run(lambda: AZURE, roles=RoleWait(600, print, time.clock, time.sleep)))
    assert checks[-1].status == doctor.FAIL
    assert batch.calls == 1
    assert time.slept == []
    assert "grant" not in checks[-1].fix


@pytest.mark.parametrize(
    ("given", "limit"),
    [
        ([], 0.0),
        (["--wait-for-roles", "10m"], 600.0),
        (["--wait-for-roles", "90"], 90.0),
        (["--wait-for-roles", "0"], 0.0),
    ],
)
def test_the_doctor_command_takes_the_wait(monkeypatch, given, limit):
    from typer.testing import CliRunner

    from runner.cli import app

    seen: list[RoleWait] = []

    def run(load: Any, probe: bool, environment: Any = None, roles: Any = None) -> Any:
        seen.append(roles)
        yield doctor.Check("outputs", doctor.OK, "fake")

    monkeypatch.setattr(doctor, "run", run)
    result = CliRunner().invoke(app, ["doctor", *given])
    assert result.exit_code == 0, result.output
    (roles,) = seen
    assert roles.limit == limit


def test_a_wait_that_is_no_duration_is_a_usage_error_naming_the_option():
    from typer.testing import CliRunner

    from runner.cli import app

    result = CliRunner().invoke(app, ["doctor", "--wait-for-roles", "ten minutes"])
    assert result.exit_code == 2
    assert "--wait-for-roles: not a duration" in result.output
