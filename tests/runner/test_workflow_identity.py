"""The runner signs in by GitHub OIDC in a workflow, with a new GitHub token each time
Entra ID needs one; a fake token endpoint on loopback stands in for GitHub."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.core.pipeline.transport import HttpTransport
from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse

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


class FakeEntra(HttpTransport):
    """Entra ID's token endpoint: a token that expires in a second, for each assertion."""

    def __init__(self) -> None:
        self.assertions: list[str] = []

    def __enter__(self) -> FakeEntra:
        return self

    def __exit__(self, *_: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **_: Any) -> Any:
        form = parse_qs(request.body.decode() if isinstance(request.body, bytes) else "")
        self.assertions += form.get("client_assertion", []) or [str(request.data)]
        answer = requests.Response()
        answer.status_code = 200
        answer.headers["Content-Type"] = "application/json"
        token = {"access_token": f"entra-{len(self.assertions)}", "expires_in": 1}
        answer._content = json.dumps({**token, "token_type": "Bearer"}).encode()
        return RequestsTransportResponse(request, answer)


def test_an_expired_entra_token_is_renewed_with_a_new_github_token(github):
    """Entra ID's token expires (here after a second; in a workflow, within the hour): the
    next request signs in again with a token GitHub gives anew, so a job of hours works."""
    entra = FakeEntra()
    credential = workflow_identity.credential(github.environment(), transport=entra)
    first = credential.get_token("https://batch.core.windows.net//.default")
    time.sleep(1.5)
    second = credential.get_token("https://batch.core.windows.net//.default")
    assert (first.token, second.token) == ("entra-1", "entra-2")
    asked = len(github.requests)  # one when the credential was made, then one a sign-in
    assert asked == 3
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


def test_a_sign_in_that_cannot_work_ends_a_command_in_one_line_with_exit_3(capsys):
    import typer

    from runner.cli import Target, errors

    with pytest.raises(typer.Exit) as ended, errors(Target()):
        workflow_identity.credential({"ACTIONS_ID_TOKEN_REQUEST_URL": "x", "AZURE_CLIENT_ID": "y"})
    assert ended.value.exit_code == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: signing in by GitHub OIDC needs ACTIONS_ID_TOKEN_REQUEST_TOKEN")
