"""The runner signs in by GitHub OIDC in a workflow, with a new GitHub token each time
Entra ID needs one; a fake token endpoint on loopback stands in for GitHub."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from runner import workflow_identity

REQUEST_TOKEN = "request-token-never-shown"


class FakeGitHub:
    """GitHub's ID-token endpoint: a new token on every request, or the status given."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        github = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                github.requests.append(
                    {"query": query, "authorization": self.headers.get("Authorization")}
                )
                body = json.dumps({"value": f"github-token-{len(github.requests)}"}).encode()
                self.send_response(github.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if github.status == 200 else b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def environment(self) -> dict[str, str]:
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-00000000c11e",
            "AZURE_TENANT_ID": "00000000-0000-0000-0000-0000000007e7",
        }


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.server.shutdown()


def test_each_assertion_is_a_new_github_token_for_entra_ids_audience(github, monkeypatch):
    """azure-identity asks for the assertion whenever it needs an Entra token (its cached
    one expired): each time, GitHub is asked again, so hours-long jobs keep working."""
    made: dict[str, Any] = {}

    class Recorded:
        def __init__(self, tenant_id: str, client_id: str, func: Any, **kwargs: Any) -> None:
            made.update(tenant=tenant_id, client=client_id, func=func, kwargs=kwargs)

    monkeypatch.setattr("azure.identity.ClientAssertionCredential", Recorded)
    credential = workflow_identity.credential(github.environment())
    assert isinstance(credential, Recorded)
    assert made["client"].endswith("c11e")
    assert made["tenant"].endswith("07e7")
    assert [made["func"](), made["func"]()] == ["github-token-2", "github-token-3"]
    for request in github.requests:
        assert request["query"]["audience"] == ["api://AzureADTokenExchange"]
        assert request["query"]["api-version"] == ["2.0"]
        assert request["authorization"] == f"bearer {REQUEST_TOKEN}"


def test_outside_a_workflow_it_is_the_default_credential():
    from azure.identity import DefaultAzureCredential

    assert not workflow_identity.wanted({})
    assert isinstance(workflow_identity.credential({}), DefaultAzureCredential)


def test_a_workflow_set_up_halfway_says_what_is_missing(github):
    environment = github.environment()
    del environment["AZURE_TENANT_ID"]
    with pytest.raises(workflow_identity.WorkflowIdentityError) as raised:
        workflow_identity.credential(environment)
    assert "needs AZURE_TENANT_ID" in str(raised.value)
    assert "id-token: write" in str(raised.value)


@pytest.mark.parametrize("status", [403, 500])
def test_github_refusing_is_one_line_without_the_request_token(github, status):
    github.status = status
    with pytest.raises(workflow_identity.WorkflowIdentityError) as raised:
        workflow_identity.github_token(github.environment(), pause=lambda _: None)
    message = str(raised.value)
    assert message.startswith(f"GitHub's token endpoint answered {status}")
    assert REQUEST_TOKEN not in message
    assert len(github.requests) == (1 if status == 403 else workflow_identity.ATTEMPTS)
