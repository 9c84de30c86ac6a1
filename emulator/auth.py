"""Batch SharedKey authentication, checked with the SDK's own signing code.

The string to sign is built by azure-batch's ``BatchSharedKeyAuthPolicy`` over the
request as it arrived (method, path as sent, query, headers), so the emulator and the
client can never disagree about it; for a request dated by ``Date`` alone the ocp-date
line the policy would add is left out again, as the client signed none.

The request's time is ``ocp-date`` when given, else ``Date`` (RFC 1123), as the service
reads it; a request more than 15 minutes from now either way is refused, as the service
refuses one (against replays), and so is a time that cannot be read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from emulator import errors

MAX_CLOCK_SKEW = timedelta(minutes=15)
"""How far a request's time may be from the service's: Batch's (and Storage's) window."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class _StringToSign(BatchSharedKeyAuthPolicy):
    """The SDK's policy, keeping the string it would sign instead of signing it."""

    captured = ""

    def _sign_string(self, string_to_sign: str) -> str:
        self.captured = string_to_sign
        return ""


class SharedKeyVerifier:
    def __init__(self, account: str, key: str, now: Callable[[], datetime] = _wall_clock) -> None:
        self.account = account
        self._now = now  # the wall clock, not the emulator's: the client signs real time
        self._credential = AzureNamedKeyCredential(account, key)
        self._key = base64.b64decode(key)

    def expected(self, method: str, url: str, headers: Mapping[str, str]) -> str:
        unsigned = {
            name: value for name, value in headers.items() if name.lower() != "authorization"
        }
        request = PipelineRequest(HttpRequest(method, url, headers=unsigned), PipelineContext(None))
        dated = bool(request.http_request.headers.get("ocp-date"))
        policy = _StringToSign(self._credential)
        policy.on_request(request)
        text = policy.captured
        if not dated:  # signed with Date alone: drop the ocp-date the SDK's policy adds
            added = request.http_request.headers["ocp-date"]
            text = text.replace(f"ocp-date:{added}\n", "", 1)
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return f"SharedKey {self.account}:{base64.b64encode(digest).decode()}"

    def verify(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        """Raise the service's error unless the Authorization header is a valid signature."""
        authorization = headers.get("authorization")
        if not authorization:
            raise _failed("The Authorization header is missing.")
        scheme, _, credentials = authorization.partition(" ")
        account, _, signature = credentials.partition(":")
        if scheme != "SharedKey" or not account or not signature:
            raise errors.InvalidAuthenticationInfo(
                values=[("AuthenticationErrorDetail", "The Authorization header is malformed.")]
            )
        if account != self.account:
            raise _failed(f"The account {account} does not exist.")
        self._check_time(headers)
        if not hmac.compare_digest(self.expected(method, url, headers), authorization):
            raise _failed(
                "The MAC signature found in the HTTP request is not the same as any "
                "computed signature."
            )

    def _check_time(self, headers: Mapping[str, str]) -> None:
        """Refuse a request without a readable time within MAX_CLOCK_SKEW of now."""
        text = headers.get("ocp-date") or headers.get("date")
        if not text:
            raise _failed("The request has no ocp-date or date header.")
        try:
            sent = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            sent = None
        if sent is None or sent.tzinfo is None:
            raise _failed("The Date header in the request is incorrect.")
        skew = sent - self._now()
        if skew < -MAX_CLOCK_SKEW:
            raise _failed(f"Request date header too old: '{text}'")
        if skew > MAX_CLOCK_SKEW:
            raise _failed(f"Request date header too far in the future: '{text}'")


def _failed(detail: str) -> errors.BatchServiceError:
    return errors.AuthenticationFailed(values=[("AuthenticationErrorDetail", detail)])
