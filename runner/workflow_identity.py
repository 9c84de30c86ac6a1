"""Signing in by GitHub's OIDC token, asked for afresh whenever Microsoft Entra ID needs
one: what keeps a job of hours running in a workflow.

``azure/login`` exchanges one GitHub token for a session of the Azure CLI; that token
lasts about ten minutes and the CLI cannot renew it (AADSTS700024), so a runner leaning on
the CLI's session loses access once its cached tokens expire. In a workflow whose job may
ask for an ID token (``permissions: id-token: write``, which sets
ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN) and which names the
identity (AZURE_CLIENT_ID, AZURE_TENANT_ID), the runner uses a client-assertion credential
whose assertion is a new GitHub token each time. Everywhere else: DefaultAzureCredential.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

AUDIENCE = "api://AzureADTokenExchange"
GITHUB = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
AZURE = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID")
ATTEMPTS = 3
TRANSIENT = (408, 429)  # and every 5xx: tried again
TIMEOUT = 30.0


class WorkflowIdentityError(Exception):
    """The workflow's sign-in cannot work; the message says why, with no token in it."""


def wanted(environment: Mapping[str, str] | None = None) -> bool:
    """Whether this runs in a workflow that can sign in by OIDC: some of the variables
    set means it was meant to, and the rest missing is an error (``credential`` says)."""
    environment = os.environ if environment is None else environment
    return any(environment.get(name) for name in GITHUB) and any(
        environment.get(name) for name in AZURE
    )


def github_token(
    environment: Mapping[str, str] | None = None,
    opener: Callable[..., Any] = urllib.request.urlopen,
    pause: Callable[[float], None] = time.sleep,
) -> str:
    """A new ID token from GitHub for Entra ID's audience (a few tries on a 5xx, a 408 or
    429, or a dropped connection)."""
    environment = os.environ if environment is None else environment
    missing = [name for name in (*GITHUB, *AZURE) if not environment.get(name)]
    if missing:
        raise WorkflowIdentityError(
            "signing in by GitHub OIDC needs " + ", ".join(missing) + " (the job needs "
            "'permissions: id-token: write' and the identity's AZURE_CLIENT_ID and "
            "AZURE_TENANT_ID)"
        )
    url, secret = environment[GITHUB[0]], environment[GITHUB[1]]
    joiner = "&" if urllib.parse.urlsplit(url).query else "?"
    request = urllib.request.Request(
        f"{url}{joiner}audience={urllib.parse.quote(AUDIENCE, safe='')}",
        headers={"Authorization": f"bearer {secret}", "Accept": "application/json"},
    )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with opener(request, timeout=TIMEOUT) as answer:
                body = answer.read()
            return _value(body)
        except urllib.error.HTTPError as error:
            transient = error.code in TRANSIENT or error.code >= 500
            if not transient or attempt == ATTEMPTS:
                said = _said(error, secret)
                raise WorkflowIdentityError(
                    f"GitHub's token endpoint answered {error.code} {error.reason}{said}"
                ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            if attempt == ATTEMPTS:
                reason = str(getattr(error, "reason", error)).replace(secret, "***")
                raise WorkflowIdentityError(
                    f"GitHub's token endpoint did not answer: {reason}"
                ) from None
        pause(2.0 * attempt)
    raise AssertionError("unreachable")


def _value(body: bytes) -> str:
    """The token in GitHub's answer, ``{"value": "..."}``."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    value = document.get("value") if isinstance(document, dict) else None
    if not isinstance(value, str) or not value:
        raise WorkflowIdentityError("GitHub's token endpoint answered without a token")
    return value


def _said(error: urllib.error.HTTPError, secret: str) -> str:
    """What GitHub said with its refusal (its ``message``), on one line, short, and with
    the request token blanked out should it be repeated."""
    try:
        document = json.loads(error.read(4096) or b"null")
    except (ValueError, OSError):
        return ""
    message = document.get("message") if isinstance(document, dict) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    line = " ".join(message.replace(secret, "***").split())
    return f": {line[:200]}"


def credential(environment: Mapping[str, str] | None = None, **options: Any) -> Any:
    """The credential for Batch and storage: GitHub OIDC in a workflow that can use it,
    else DefaultAzureCredential (az login, a managed identity, environment variables).
    ``options`` go to the GitHub OIDC credential (azure-identity's, e.g. a transport)."""
    environment = os.environ if environment is None else environment
    if not wanted(environment):
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    from azure.identity import ClientAssertionCredential

    github_token(environment)  # a workflow set up wrong fails now, in one line
    authority = environment.get("AZURE_AUTHORITY_HOST")
    return ClientAssertionCredential(
        environment["AZURE_TENANT_ID"],
        environment["AZURE_CLIENT_ID"],
        lambda: github_token(environment),
        **({"authority": authority} if authority else {}),
        **options,
    )
