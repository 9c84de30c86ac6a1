"""Conditional requests as the service answers them: 412 ConditionNotMet when a condition
does not hold, and for a read whose copy is current, 304 with no body.

The rules are tested on ``emulator.conditions.check`` alone; then the session's
in-process emulator shows them on jobs, tasks and pools through azure-batch 15.x, and
``send_request`` shows the raw status codes and headers. One live test covers files,
whose conditions are on the file's modification time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest, HttpResponse

from emulator import conditions, errors, wire
from tests.emulator.conftest import (
    pool_options,
    raises_batch_error,
    unique,
    wait_for,
    wait_for_task,
)

API = {"api-version": "2025-06-01"}
POLL = 0.05  # the SDK pollers' interval (5 s by default)
SECOND = timedelta(seconds=1)
STALE = "0x8DC0FFEE0000000"  # an ETag no resource has
CURRENT = MatchConditions.IfNotModified  # If-Match: the ETag
CHANGED = MatchConditions.IfModified  # If-None-Match: the ETag

# --- the rules -------------------------------------------------------------------------

ETAG = "0x8DE2A1B2C3D4E5F"
NOW = datetime(2026, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)  # Last-Modified says 12:00:00
BEFORE, AFTER = wire.http_date(NOW - SECOND), wire.http_date(NOW + SECOND)


def _check(headers: dict[str, str], *, read: bool, supported: Any = conditions.ENTITY) -> None:
    conditions.check(headers, ETAG, NOW, read=read, supported=supported)


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": ETAG},
        {"If-Match": f'"{ETAG}"'},  # quoted, as the SDK sends it
        {"If-Match": f'"{STALE}", "{ETAG}"'},
        {"If-Match": "*"},
        {"If-None-Match": f'"{STALE}"'},
        {"If-Modified-Since": BEFORE},
        {"If-Unmodified-Since": wire.http_date(NOW)},  # the Last-Modified it was given
        {"if-match": ETAG, "if-unmodified-since": BEFORE},  # If-Match decides
    ],
)
def test_conditions_that_hold_let_reads_and_writes_go_on(headers):
    _check(headers, read=True)
    _check(headers, read=False)


@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": f'"{ETAG}"'},
        {"If-None-Match": f'W/"{ETAG}"'},  # If-None-Match compares weakly
        {"If-None-Match": "*"},
        {"If-Modified-Since": wire.http_date(NOW)},  # the same second
        {"If-Modified-Since": AFTER},
        {"If-None-Match": ETAG, "If-Modified-Since": BEFORE},  # If-None-Match decides
    ],
)
def test_an_unchanged_resource_is_not_modified_for_a_read_and_412_for_a_write(headers):
    with pytest.raises(conditions.NotModified):
        _check(headers, read=True)
    with pytest.raises(errors.ConditionNotMet) as caught:
        _check(headers, read=False)
    assert caught.value.status == 412
    assert caught.value.detail.endswith("was not met for a write operation.")


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": f'"{STALE}"'},
        {"If-Match": f'W/"{ETAG}"'},  # If-Match compares strongly
        {"If-Unmodified-Since": BEFORE},
        {"If-Match": STALE, "If-Unmodified-Since": AFTER},  # If-Match decides
    ],
)
def test_a_changed_resource_fails_if_match_and_if_unmodified_since(headers):
    with pytest.raises(errors.ConditionNotMet) as read:
        _check(headers, read=True)
    assert read.value.detail == conditions.READ_NOT_MET
    with pytest.raises(errors.ConditionNotMet) as write:
        _check(headers, read=False)
    assert write.value.detail == errors.ConditionNotMet.message


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": ETAG, "If-None-Match": f'"{STALE}"'},
        {"If-Match": ETAG, "If-Modified-Since": BEFORE},
        {"If-Modified-Since": BEFORE, "If-Unmodified-Since": AFTER},
    ],
)
def test_other_pairs_of_conditions_are_refused(headers):
    with pytest.raises(errors.MultipleConditionHeadersNotSupported) as caught:
        _check(headers, read=True)
    assert caught.value.status == 400


def test_a_date_that_does_not_parse_is_an_invalid_header_value():
    with pytest.raises(errors.InvalidHeaderValue) as caught:
        _check({"If-Unmodified-Since": "yesterday"}, read=False)
    assert caught.value.values == [
        ("HeaderName", "If-Unmodified-Since"),
        ("HeaderValue", "yesterday"),
    ]


def test_files_take_only_the_dates():
    _check({"If-Match": f'"{STALE}"'}, read=True, supported=conditions.FILE)
    with pytest.raises(conditions.NotModified):
        _check({"If-Modified-Since": AFTER}, read=True, supported=conditions.FILE)


# --- through the API -------------------------------------------------------------------


def _raw(
    batch: BatchClient, method: str, path: str, headers: dict[str, str], body: Any = None
) -> HttpResponse:
    """The response as sent: the SDK raises on any status outside 2xx, 304 included."""
    request = HttpRequest(method, path, params=API, headers=headers, json=body)
    try:
        return batch.send_request(request)
    except HttpResponseError as error:
        response: HttpResponse = error.response
        return response


def _priority(priority: int) -> models.BatchJobUpdateOptions:
    return models.BatchJobUpdateOptions(priority=priority)


def test_a_stale_if_match_on_a_job_patch_is_412_and_the_job_is_unchanged(batch, job):
    first = batch.get_job(job)
    batch.update_job(job, _priority(10), etag=first.etag, match_condition=CURRENT)
    updated = batch.get_job(job)
    assert (updated.priority, updated.etag != first.etag) == (10, True)

    error = raises_batch_error(
        lambda: batch.update_job(job, _priority(20), etag=first.etag, match_condition=CURRENT),
        412,
        "ConditionNotMet",
    )
    assert "was not met for a write operation" in str(error.message)
    after = batch.get_job(job)
    assert (after.priority, after.etag) == (10, updated.etag)


def test_a_get_with_the_current_etag_in_if_none_match_is_304_without_a_body(batch, job):
    current = batch.get_job(job)
    response = _raw(batch, "GET", f"/jobs/{job}", {"If-None-Match": f'"{current.etag}"'})
    assert response.status_code == 304
    assert response.read() == b""
    assert response.headers["ETag"] == current.etag
    assert response.headers["Last-Modified"] == wire.http_date(current.last_modified)

    other = _raw(batch, "GET", f"/jobs/{job}", {"If-None-Match": f'"{STALE}"'})
    assert (other.status_code, other.json()["id"]) == (200, job)
    with pytest.raises(HttpResponseError) as caught:
        batch.get_job(job, etag=current.etag, match_condition=CHANGED)
    assert caught.value.status_code == 304


def test_if_modified_since_on_a_read_and_on_a_write(batch, job):
    current = batch.get_job(job)
    since = current.last_modified
    assert batch.get_job(job, if_modified_since=since - SECOND).id == job
    for moment in (since, since + timedelta(hours=1)):
        response = _raw(batch, "GET", f"/jobs/{job}", {"If-Modified-Since": wire.http_date(moment)})
        assert (response.status_code, response.read()) == (304, b"")

    raises_batch_error(
        lambda: batch.update_job(job, _priority(7), if_modified_since=since + SECOND),
        412,
        "ConditionNotMet",
    )
    assert batch.get_job(job).etag == current.etag
    batch.update_job(job, _priority(7), if_modified_since=since - SECOND)
    assert batch.get_job(job).priority == 7


def test_if_unmodified_since_on_a_read_and_on_a_write(batch, job):
    current = batch.get_job(job)
    before = current.last_modified - SECOND
    error = raises_batch_error(
        lambda: batch.get_job(job, if_unmodified_since=before), 412, "ConditionNotMet"
    )
    assert "was not met for a read operation" in str(error.message)
    raises_batch_error(
        lambda: batch.update_job(job, _priority(5), if_unmodified_since=before),
        412,
        "ConditionNotMet",
    )
    assert batch.get_job(job).etag == current.etag
    batch.update_job(job, _priority(5), if_unmodified_since=current.last_modified)
    assert batch.get_job(job).priority == 5


def test_a_wildcard_matches_any_existing_resource(batch, job):
    batch.update_job(job, _priority(3), match_condition=MatchConditions.IfPresent)  # If-Match: *
    assert batch.get_job(job).priority == 3
    assert _raw(batch, "GET", f"/jobs/{job}", {"If-None-Match": "*"}).status_code == 304
    raises_batch_error(
        lambda: batch.update_job(job, _priority(4), match_condition=MatchConditions.IfMissing),
        412,
        "ConditionNotMet",
    )
    assert batch.get_job(job).priority == 3


def test_terminating_or_deleting_a_job_checks_its_conditions_first(batch, job):
    stop = {"terminateReason": "stopped"}  # 15.1 cannot send a terminate without options
    raises_batch_error(
        lambda: batch.begin_terminate_job(job, stop, etag=STALE, match_condition=CURRENT),
        412,
        "ConditionNotMet",
    )
    raises_batch_error(
        lambda: batch.begin_delete_job(job, etag=STALE, match_condition=CURRENT),
        412,
        "ConditionNotMet",
    )
    assert batch.get_job(job).state == "active"


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": "*", "If-None-Match": f'"{STALE}"'},
        {"If-Modified-Since": BEFORE, "If-Unmodified-Since": AFTER},
    ],
)
def test_two_conditions_that_do_not_go_together_are_400(batch, job, headers):
    response = _raw(batch, "GET", f"/jobs/{job}", headers)
    assert response.status_code == 400
    assert response.json()["code"] == "MultipleConditionHeadersNotSupported"


def test_a_date_that_does_not_parse_is_400(batch, job):
    response = _raw(batch, "PATCH", f"/jobs/{job}", {"If-Modified-Since": "soon"}, {"priority": 1})
    assert (response.status_code, response.json()["code"]) == (400, "InvalidHeaderValue")
    assert batch.get_job(job).priority == 0


def test_task_operations_check_their_conditions(batch, job):
    batch.create_task(job, models.BatchTaskCreateOptions(id="t", command_line="sleep 600"))
    running = wait_for(lambda: (t := batch.get_task(job, "t")).state == "running" and t)
    response = _raw(batch, "GET", f"/jobs/{job}/tasks/t", {"If-None-Match": f'"{running.etag}"'})
    assert (response.status_code, response.read()) == (304, b"")

    stale = {"etag": STALE, "match_condition": CURRENT}
    for refused in (
        lambda: batch.terminate_task(job, "t", **stale),
        lambda: batch.delete_task(job, "t", if_unmodified_since=running.last_modified - SECOND),
        lambda: batch.reactivate_task(job, "t", if_modified_since=running.last_modified + SECOND),
    ):
        raises_batch_error(refused, 412, "ConditionNotMet")
    assert batch.get_task(job, "t").state == "running"

    batch.terminate_task(job, "t", etag=batch.get_task(job, "t").etag, match_condition=CURRENT)
    assert wait_for(lambda: batch.get_task(job, "t").state == "completed")


def test_pool_operations_check_their_conditions(batch):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    first = wait_for(lambda: (p := batch.get_pool(pool_id)).allocation_state == "steady" and p)
    for method in ("GET", "HEAD"):
        response = _raw(batch, method, f"/pools/{pool_id}", {"If-None-Match": f'"{first.etag}"'})
        assert (response.status_code, response.read()) == (304, b"")

    stale = {"etag": STALE, "match_condition": CURRENT}
    autoscale = models.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes=0;"
    )
    resize = models.BatchPoolResizeOptions(target_dedicated_nodes=1)
    for refused in (
        lambda: batch.begin_resize_pool(pool_id, resize, **stale),
        lambda: batch.begin_stop_pool_resize(
            pool_id, if_modified_since=first.last_modified + SECOND
        ),
        lambda: batch.enable_pool_auto_scale(pool_id, autoscale, **stale),
        lambda: batch.begin_delete_pool(pool_id, if_unmodified_since=first.last_modified - SECOND),
    ):
        raises_batch_error(refused, 412, "ConditionNotMet")
    unchanged = batch.get_pool(pool_id)
    assert (unchanged.etag, unchanged.target_dedicated_nodes) == (first.etag, 0)
    assert not unchanged.enable_auto_scale

    batch.begin_resize_pool(
        pool_id, resize, etag=first.etag, match_condition=CURRENT, polling_interval=POLL
    ).result()
    assert batch.get_pool(pool_id).target_dedicated_nodes == 1
    raises_batch_error(  # the resize changed the pool: the first ETag is stale now
        lambda: batch.begin_delete_pool(pool_id, etag=first.etag, match_condition=CURRENT),
        412,
        "ConditionNotMet",
    )
    batch.begin_delete_pool(
        pool_id, match_condition=MatchConditions.IfPresent, polling_interval=POLL
    ).result()
    raises_batch_error(lambda: batch.get_pool(pool_id), 404, "PoolNotFound")


@pytest.mark.served
def test_task_files_answer_their_date_conditions(batch, job):
    before = datetime.now(UTC) - SECOND
    echo = "/bin/sh -c 'echo hello'"
    batch.create_task(job, models.BatchTaskCreateOptions(id="f", command_line=echo))
    wait_for_task(batch, job, "f")
    path = f"/jobs/{job}/tasks/f/files/stdout.txt"
    written = datetime.now(UTC)  # the file's modification time, or later
    for method in ("GET", "HEAD"):
        later = {"If-Modified-Since": wire.http_date(written + timedelta(hours=1))}
        response = _raw(batch, method, path, later)
        assert (response.status_code, response.read()) == (304, b"")
    content = batch.download_task_file(job, "f", "stdout.txt", if_modified_since=before)
    assert b"".join(content) == b"hello\n"
    earlier = before - timedelta(hours=1)
    refused = _raw(batch, "GET", path, {"If-Unmodified-Since": wire.http_date(earlier)})
    assert (refused.status_code, refused.json()["code"]) == (412, "ConditionNotMet")
    with pytest.raises(HttpResponseError) as caught:  # a HEAD's error has no body
        batch.get_task_file_properties(job, "f", "stdout.txt", if_unmodified_since=earlier)
    assert caught.value.status_code == 412
