"""Batch SharedKey authentication, checked with the SDK's own signing code.

The expected signature is computed by azure-batch's ``BatchSharedKeyAuthPolicy`` over the
request as it arrived (method, path as sent, query, headers), so the emulator and the
client can never disagree about the canonical string to sign.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from emulator import errors


class SharedKeyVerifier:
    def __init__(self, account: str, key: str) -> None:
        self.account = account
        self._policy = BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(account, key))

    def expected(self, method: str, url: str, headers: Mapping[str, str]) -> str:
        unsigned = {
            name: value for name, value in headers.items() if name.lower() != "authorization"
        }
        request = PipelineRequest(HttpRequest(method, url, headers=unsigned), PipelineContext(None))
        self._policy.on_request(request)
        return str(request.http_request.headers["Authorization"])

    def verify(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        """Raise the service's error unless the Authorization header is a valid signature."""
        authorization = headers.get("authorization")
        if not authorization:
            raise errors.AuthenticationFailed(
                values=[("AuthenticationErrorDetail", "The Authorization header is missing.")]
            )
        scheme, _, credentials = authorization.partition(" ")
        account, _, signature = credentials.partition(":")
        if scheme != "SharedKey" or not account or not signature:
            raise errors.InvalidAuthenticationInfo(
                values=[("AuthenticationErrorDetail", "The Authorization header is malformed.")]
            )
        if account != self.account:
            raise errors.AuthenticationFailed(
                values=[("AuthenticationErrorDetail", f"The account {account} does not exist.")]
            )
        if not any(name in headers for name in ("ocp-date", "date")):
            raise errors.AuthenticationFailed(
                values=[
                    ("AuthenticationErrorDetail", "The request has no ocp-date or date header.")
                ]
            )
        if not hmac.compare_digest(self.expected(method, url, headers), authorization):
            raise errors.AuthenticationFailed(
                values=[
                    (
                        "AuthenticationErrorDetail",
                        "The MAC signature found in the HTTP request is not the same as any "
                        "computed signature.",
                    )
                ]
            )
