"""Conditional requests: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since.

The routes call ``check`` with a request's headers and the record's ETag and last-modified
time before they act, so a refused write changes nothing. The rules are the Batch
service's ("Specifying conditional headers" in the Batch REST reference):

- If-None-Match with If-Modified-Since: only If-None-Match is evaluated; If-Match with
  If-Unmodified-Since: only If-Match. Any other two headers together are 400
  MultipleConditionHeadersNotSupported.
- A read (GET, HEAD) whose If-None-Match or If-Modified-Since does not hold is 304 Not
  Modified with no body (``NotModified`` here); one whose If-Match or If-Unmodified-Since
  does not hold is 412 ConditionNotMet.
- A write (POST, PUT, PATCH, DELETE) whose condition does not hold is 412 ConditionNotMet,
  whichever header it was.
- ``*`` has its HTTP meaning: If-Match: * holds for any existing resource, If-None-Match: *
  for none (the routes answer 404 before asking about a missing one).

Which headers an operation takes comes from the REST specification: pools, jobs and tasks
take all four (``ENTITY``: its BatchMatchHeaders); task and node files, which have no
ETag, only the two dates (``FILE``: BatchModifiedSinceHeaders). Operations that take none
(creates, lists, evaluate and disable autoscale, node reboot and reimage) do not call
``check``; headers an operation does not take are ignored, as the SDK never sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from emulator import errors

IF_MATCH = "if-match"
IF_NONE_MATCH = "if-none-match"
IF_MODIFIED_SINCE = "if-modified-since"
IF_UNMODIFIED_SINCE = "if-unmodified-since"

ENTITY = frozenset({IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE})
"""What pool, job and task operations take (get, exists, delete, patch, resize, ...)."""
FILE = frozenset({IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE})
"""What getting a task's or a node's file (content or properties) takes."""

READ_NOT_MET = (
    "The condition specified in the conditional header(s) was not met for a read operation."
)


class NotModified(Exception):
    """A read whose conditions say the client's copy is current: answer 304, no body."""


def check(
    headers: Mapping[str, str],
    etag: str | None,
    last_modified: datetime | None,
    *,
    read: bool,
    supported: frozenset[str] = ENTITY,
) -> None:
    """Return if the request may go on; raise ``NotModified`` for a 304, or the error.

    ``headers`` is the request's (any case); ``etag`` and ``last_modified`` describe the
    resource as it is now. A resource without an ETag matches no entity tag.
    """
    present = {name.lower(): value for name, value in headers.items()}
    conditions = {name: present[name] for name in supported if name in present}
    if IF_NONE_MATCH in conditions:
        conditions.pop(IF_MODIFIED_SINCE, None)
    if IF_MATCH in conditions:
        conditions.pop(IF_UNMODIFIED_SINCE, None)
    if len(conditions) > 1:
        raise errors.MultipleConditionHeadersNotSupported(
            values=[("HeaderName", _canonical(name)) for name in sorted(conditions)]
        )
    if not conditions:
        return
    [(name, value)] = conditions.items()
    if _holds(name, value, etag, last_modified):
        return
    if read and name in (IF_NONE_MATCH, IF_MODIFIED_SINCE):
        raise NotModified()
    raise errors.ConditionNotMet(READ_NOT_MET if read else None)


def _holds(name: str, value: str, etag: str | None, last_modified: datetime | None) -> bool:
    if name == IF_MATCH:
        return value.strip() == "*" or (etag is not None and etag in _tags(value, weak=False))
    if name == IF_NONE_MATCH:
        return value.strip() != "*" and (etag is None or etag not in _tags(value, weak=True))
    moment = _http_date(name, value)
    if last_modified is None:
        return True
    # Last-Modified goes out in whole seconds: compare in them, or a client sending back
    # the value it was given would find the resource changed in the same second.
    modified = last_modified.astimezone(UTC).replace(microsecond=0)
    return modified > moment if name == IF_MODIFIED_SINCE else modified <= moment


def _tags(value: str, *, weak: bool) -> set[str]:
    """The entity tags of a header, quoted (as the SDK sends them) or not. ``weak``: a
    W/ tag counts too (If-None-Match's weak comparison); otherwise it matches nothing."""
    tags = set()
    for item in value.split(","):
        tag = item.strip()
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        tags.add(tag.strip('"'))
    return tags


def _http_date(name: str, value: str) -> datetime:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise errors.InvalidHeaderValue(
            values=[("HeaderName", _canonical(name)), ("HeaderValue", value)]
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
