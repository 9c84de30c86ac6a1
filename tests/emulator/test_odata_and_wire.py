"""$filter expressions and the wire formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator import errors, odata, queryable, wire

TASK = {"id": "a", "state": "completed", "executionInfo": {"result": "failure", "exitCode": 3}}
TASKS = queryable.listing("tasks")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state eq 'completed'", True),
        ("state eq 'Completed'", True),  # enum values compare case-insensitively
        ("state ne 'completed'", False),
        ("state eq 'completed' and executionInfo/result eq 'failure'", True),
        ("(state eq 'active') or (executionInfo/exitCode gt 2)", True),
        ("not (state eq 'completed')", False),
        ("executionInfo/exitCode le 2", False),
        ("id eq 'it''s'", False),
    ],
)
def test_filters(text, expected):
    assert odata.compile_filter(text, TASKS)(TASK) is expected


@pytest.mark.parametrize(
    "text", ["state eq", "state like 'x'", "(state eq 'a'", "'a' eq state", "state eq 'a' x"]
)
def test_malformed_filters_are_invalid_query_parameter_value(text):
    with pytest.raises(errors.BatchServiceError) as caught:
        odata.compile_filter(text, TASKS)
    assert caught.value.code == "InvalidQueryParameterValue"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PT1S", timedelta(seconds=1)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P2D", timedelta(days=2)),
        ("P1DT0.5S", timedelta(days=1, seconds=0.5)),
    ],
)
def test_durations(text, value):
    assert wire.parse_duration(text, "x") == value
    assert wire.parse_duration(wire.format_duration(value), "x") == value


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "PT1X", "P1DT", "soon"])
def test_bad_durations_are_invalid_property_value(text):
    with pytest.raises(errors.BatchServiceError) as caught:
        wire.parse_duration(text, "maxWallClockTime")
    assert caught.value.code == "InvalidPropertyValue"


def test_unbounded_duration_round_trips():
    assert wire.format_duration(wire.UNBOUNDED) == "P10675199DT2H48M5.4775807S"
    assert wire.parse_duration("P10675199DT2H48M5.4775807S", "x") >= wire.UNBOUNDED


def test_timestamps_have_seven_fractional_digits():
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert wire.timestamp(moment) == "2024-05-06T07:08:09.1234560Z"


def test_etags_increase():
    moment = datetime(2024, 5, 6, tzinfo=UTC)
    first, second = wire.etag(moment, 1), wire.etag(moment, 2)
    assert first.startswith("0x8D")
    assert first != second
    assert int(second, 16) > int(first, 16)
