"""doctor --wait-for-roles: a 403 is retried, for a bounded time, while role assignments
propagate; nothing else is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

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
    time, said = FakeTime(), []
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
    def __init__(self, refusals: int) -> None:
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
    names = SimpleNamespace(application="application", input="input", output="output")
    containers = {name: Container(refusals=2) for name in ("application", "input", "output")}
    clients = SimpleNamespace(
        outputs=SimpleNamespace(containers=names, local=None), container=containers.__getitem__
    )
    time = FakeTime()
    checks = list(doctor._storage(clients, RoleWait(600, lambda _: None, time.clock, time.sleep)))  # type: ignore[arg-type]
    assert [check.status for check in checks] == [doctor.OK, doctor.OK]
    assert time.slept  # it waited
    impatient = {name: Container(refusals=2) for name in ("application", "input", "output")}
    clients.container = impatient.__getitem__
    (failed,) = list(doctor._storage(clients, RoleWait()))  # type: ignore[arg-type]
    assert failed.status == doctor.FAIL
