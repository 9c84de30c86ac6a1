"""The Batch wire formats: timestamps, ETags, ISO 8601 durations and supported API versions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from emulator import errors

API_VERSIONS = frozenset(
    {
        "2025-06-01",  # azure-batch 15.x
        "2025-06-01.21.0",  # the same, as the data-plane specification names it
        "2024-07-01.20.0",  # azure-batch 15.0.0b2
        "2024-02-01.19.0",  # azure-batch 14.2.0, azure-cli 2.91
        "2023-11-01.18.0",  # azure-batch 14.1.0
        "2023-05-01.17.0",  # azure-batch 14.0.0
        "2022-10-01.16.0",  # azure-batch 13.0.0
        "2022-01-01.15.0",  # azure-batch 12.0.0
        "2021-06-01.14.0",  # azure-batch 11.0.0, as Microsoft's Python quickstart pins it
    }
)
"""Data-plane versions the service still documents; any other is UnsupportedRequestVersion."""

JSON_CONTENT_TYPE = "application/json;odata=minimalmetadata"

MAX_BODY_BYTES = 1 << 20
"""A request body's limit: Batch documents 1 MB for a task collection, answered with
RequestBodyTooLarge (on which the SDK's create_tasks retries in smaller chunks)."""

UNBOUNDED = timedelta(days=10675199, seconds=10085, microseconds=477580)
"""The service's 'no limit' for durations: P10675199DT2H48M5.4775807S (TimeSpan.MaxValue)."""


def check_api_version(version: str | None) -> str:
    if version is None:
        raise errors.MissingRequiredQueryParameter(values=[("QueryParameterName", "api-version")])
    if version not in API_VERSIONS:
        raise errors.UnsupportedRequestVersion(
            values=[("QueryParameterName", "api-version"), ("QueryParameterValue", version)]
        )
    return version


def check_body_size(size: int) -> None:
    if size > MAX_BODY_BYTES:
        raise errors.RequestBodyTooLarge(
            values=[("MaxRequestBodySizeInBytes", str(MAX_BODY_BYTES))]
        )


def timestamp(moment: datetime) -> str:
    """'2016-11-22T18:55:25.2608598Z': seven fractional digits, as the service writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def etag(moment: datetime, sequence: int) -> str:
    """An opaque, strictly increasing ETag in the service's '0x8D4…' style."""
    ticks = int(moment.timestamp() * 10_000_000) + 621355968000000000  # .NET ticks
    return f"0x{ticks + sequence % 10_000:X}"


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str, name: str) -> timedelta:
    """An ISO 8601 duration as Batch accepts it (days, hours, minutes, seconds)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise errors.invalid_property(name, text)
    parts = {key: float(value) for key, value in match.groupdict().items() if value}
    return timedelta(**parts)


def format_duration(value: timedelta) -> str:
    if value >= UNBOUNDED:
        return "P10675199DT2H48M5.4775807S"
    total = value.total_seconds()
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{int(days)}D" if days else "")
    clock = (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    if seconds or not (days or clock):
        clock += f"{seconds:g}S"
    return text + ("T" + clock if clock else "")
