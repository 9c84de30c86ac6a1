"""The runner signs in by GitHub OIDC in a workflow, with a new GitHub token each time
Entra ID needs one; a fake token endpoint on loopback stands in for GitHub."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
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
        self.statuses: list[int] = []  # answered first, one a request, then ``status``
        self.refusal = b"{}"  # the body of an answer other than 200
        self.token_body: bytes | None = None  # instead of {"value": ...}
        github = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                github.requests.append(
                    {
                        "path": urlsplit(self.path).path,
                        "query": query,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                status = github.statuses.pop(0) if github.statuses else github.status
                body = json.dumps({"value": f"github-token-{len(github.requests)}"}).encode()
                if github.token_body is not None:
                    body = github.token_body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if status == 200 else github.refusal)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

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


class FakeEntra(HttpTransport):  # type: ignore[type-arg]
    """Entra ID's token endpoint: a token that expires in a second, for each assertion."""

    def __init__(self) -> None:
        self.assertions: list[str] = []
        self.urls: list[str] = []

    def __enter__(self) -> FakeEntra:
        return self

    def __exit__(self, *_: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **_: Any) -> Any:
        self.urls.append(request.url)
        form = request.data if isinstance(request.data, dict) else {}
        self.assertions.append(str(form.get("client_assertion")))
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
    assert entra.assertions == ["github-token-2", "github-token-3"]  # a new one each time
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


FOUR = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
)

SHORT = dict(zip(FOUR, ("url", "request-token", "client", "tenant"), strict=True))


class Recorded:
    """azure-identity's ClientAssertionCredential as the runner makes it, kept to look at."""

    made: ClassVar[list[Recorded]] = []

    def __init__(self, tenant_id: str, client_id: str, func: Any, **options: Any) -> None:
        self.tenant_id, self.client_id, self.func, self.options = (
            tenant_id,
            client_id,
            func,
            options,
        )
        Recorded.made.append(self)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> type[Recorded]:
    import azure.identity

    Recorded.made = []
    monkeypatch.setattr(azure.identity, "ClientAssertionCredential", Recorded)
    return Recorded


def test_each_assertion_asked_for_is_a_new_github_token(github, recorded):
    """azure-identity calls the assertion function each time it signs in again (its cached
    token near expiry): each call is a request to GitHub and a token not given before."""
    environment = github.environment()
    made = workflow_identity.credential(environment)
    assert made is recorded.made[-1]
    assert (made.tenant_id, made.client_id) == (
        environment["AZURE_TENANT_ID"],
        environment["AZURE_CLIENT_ID"],
    )
    asked = len(github.requests)
    tokens = [made.func() for _ in range(3)]
    assert len(set(tokens)) == 3
    assert len(github.requests) == asked + 3
    assert all(r["path"] == "/token" for r in github.requests)
    assert "authority" not in made.options  # azure-identity's default, the public cloud


def test_the_authority_host_is_honoured(github, recorded):
    environment = {**github.environment(), "AZURE_AUTHORITY_HOST": "https://login.example.test"}
    made = workflow_identity.credential(environment)
    assert made.options["authority"] == "https://login.example.test"


def test_the_sign_in_goes_to_the_authority_host(github):
    entra = FakeEntra()
    environment = {**github.environment(), "AZURE_AUTHORITY_HOST": "https://login.example.test"}
    credential = workflow_identity.credential(environment, transport=entra)
    assert credential.get_token("https://batch.core.windows.net//.default").token == "entra-1"
    (url,) = entra.urls
    assert url.startswith(f"https://login.example.test/{environment['AZURE_TENANT_ID']}/")
    assert entra.assertions == ["github-token-2"]  # the one asked for at the sign-in


@pytest.mark.parametrize(
    "present",
    [subset for size in range(len(FOUR)) for subset in itertools.combinations(FOUR, size)],
    ids=lambda subset: "+".join(SHORT[name] for name in subset) or "none",
)
def test_the_github_credential_needs_all_four_variables(github, recorded, present):
    """Only with all four set is it GitHub OIDC. GitHub's pair without the identity (a
    job that may ask for a token but signs in otherwise) or the identity without GitHub's
    (a managed identity, a service principal's secret) is DefaultAzureCredential's; some
    of each is a workflow set up halfway: an error naming what is missing."""
    from azure.identity import DefaultAzureCredential

    environment = {name: value for name, value in github.environment().items() if name in present}
    halfway = any(n in present for n in FOUR[:2]) and any(n in present for n in FOUR[2:])
    if halfway:
        with pytest.raises(workflow_identity.WorkflowIdentityError) as raised:
            workflow_identity.credential(environment)
        missing = [name for name in FOUR if name not in present]
        assert str(raised.value).startswith(
            "signing in by GitHub OIDC needs " + ", ".join(missing) + " "
        )
    else:
        assert isinstance(workflow_identity.credential(environment), DefaultAzureCredential)
    assert recorded.made == []
    assert github.requests == []  # GitHub is not asked unless it can answer
    assert isinstance(
        workflow_identity.credential(github.environment()), recorded
    )  # and with all four it is


def test_an_empty_variable_counts_as_missing(github):
    environment = {**github.environment(), "AZURE_CLIENT_ID": ""}
    with pytest.raises(workflow_identity.WorkflowIdentityError, match="needs AZURE_CLIENT_ID"):
        workflow_identity.credential(environment)


def test_a_transient_refusal_is_tried_again(github):
    github.statuses = [429, 503]
    pauses: list[float] = []
    token = workflow_identity.github_token(github.environment(), pause=pauses.append)
    assert token == "github-token-3"
    assert len(pauses) == 2


def test_what_github_said_is_in_the_error_but_never_the_request_token(github):
    github.status = 403
    github.refusal = json.dumps(
        {"message": f"Bad credentials\nfor {REQUEST_TOKEN}", "documentation_url": "x"}
    ).encode()
    with pytest.raises(workflow_identity.WorkflowIdentityError) as raised:
        workflow_identity.github_token(github.environment(), pause=lambda _: None)
    message = str(raised.value)
    assert message == "GitHub's token endpoint answered 403 Forbidden: Bad credentials for ***"
    assert REQUEST_TOKEN not in message


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"value": ""}', b'{"count": 1}'])
def test_an_answer_without_a_token_is_a_clear_error(github, body):
    github.token_body = body
    with pytest.raises(workflow_identity.WorkflowIdentityError, match="answered without a token"):
        workflow_identity.github_token(github.environment(), pause=lambda _: None)


def test_an_endpoint_that_does_not_answer_is_a_clear_error(github):
    environment = github.environment()
    github.server.shutdown()
    github.server.server_close()
    with pytest.raises(workflow_identity.WorkflowIdentityError) as raised:
        workflow_identity.github_token(environment, pause=lambda _: None)
    assert str(raised.value).startswith("GitHub's token endpoint did not answer")
    assert REQUEST_TOKEN not in str(raised.value)


def test_a_url_without_a_query_gets_the_audience_as_its_query(github):
    environment = {**github.environment(), "ACTIONS_ID_TOKEN_REQUEST_URL": github.url.split("?")[0]}
    workflow_identity.github_token(environment)
    assert github.requests[-1]["query"] == {"audience": ["api://AzureADTokenExchange"]}


def test_no_token_reaches_the_log(github, caplog):
    """The request token, GitHub's tokens and Entra ID's are in no log line, even at DEBUG."""
    import logging

    caplog.set_level(logging.DEBUG)
    entra = FakeEntra()
    credential = workflow_identity.credential(github.environment(), transport=entra)
    credential.get_token("https://batch.core.windows.net//.default")
    github.status = 403
    with pytest.raises(workflow_identity.WorkflowIdentityError):
        credential.get_token("https://storage.azure.com/.default")
    for secret in (REQUEST_TOKEN, "github-token-", "entra-1"):
        assert secret not in caplog.text
