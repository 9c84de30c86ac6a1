"""SharedKey and api-version: refused the way the service refuses them."""

from __future__ import annotations

import base64

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from emulator.app import DEFAULT_ACCOUNT
from tests.emulator.conftest import client_for, raises_batch_error

pytestmark = pytest.mark.served  # real processes, storage or authentication


def test_a_wrong_key_is_403_authentication_failed(emulator):
    wrong = base64.b64encode(b"not the account key").decode()
    client = client_for(emulator.url, key=wrong)
    error = raises_batch_error(lambda: list(client.list_pools()), 403, "AuthenticationFailed")
    assert "RequestId:" in str(error)


def test_an_unknown_account_is_403(emulator):
    client = client_for(emulator.url, account="someoneelse")
    raises_batch_error(lambda: list(client.list_pools()), 403, "AuthenticationFailed")


def _raw(emulator, path: str, headers: dict[str, str]):
    with RequestsTransport() as transport:
        return transport.send(HttpRequest("GET", f"{emulator.url}{path}", headers=headers))


def test_a_missing_authorization_header_is_refused(emulator):
    response = _raw(emulator, "/pools?api-version=2025-06-01", {})
    assert response.status_code == 403
    assert response.json()["code"] == "AuthenticationFailed"
    assert response.headers["content-type"].startswith("application/json;odata=minimalmetadata")
    assert response.headers["request-id"]


def test_a_malformed_authorization_header_is_400(emulator):
    response = _raw(
        emulator, "/pools?api-version=2025-06-01", {"Authorization": f"Bearer {DEFAULT_ACCOUNT}"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidAuthenticationInfo"
    assert body["message"]["lang"] == "en-US"
    assert body["odata.metadata"].endswith(
        "$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
    )


def test_a_missing_api_version_is_400(emulator):
    response = _raw(emulator, "/pools", {})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "MissingRequiredQueryParameter"
    assert body["values"] == [{"key": "QueryParameterName", "value": "api-version"}]


@pytest.mark.parametrize("version", ["2099-01-01", "2020-09-01.12.0", "latest"])
def test_an_unsupported_api_version_is_refused(emulator, version):
    client = client_for(emulator.url, api_version=version)
    raises_batch_error(lambda: list(client.list_pools()), 400, "UnsupportedRequestVersion")


@pytest.mark.parametrize("version", ["2024-02-01.19.0", "2025-06-01.21.0"])
def test_an_older_or_the_specifications_own_api_version_is_accepted(emulator, version):
    client = client_for(emulator.url, api_version=version)
    assert isinstance(list(client.list_pools()), list)


@pytest.mark.parametrize(("asked", "echoed"), [("true", True), ("false", False), (None, False)])
def test_client_request_id_is_echoed_only_when_asked(emulator, batch, asked, echoed):
    headers = {"client-request-id": "3f1e-my-id"}
    if asked is not None:
        headers["return-client-request-id"] = asked
    response = batch.send_request(
        HttpRequest("GET", "/pools", params={"api-version": "2025-06-01"}, headers=headers)
    )
    assert response.status_code == 200
    assert response.headers.get("client-request-id") == ("3f1e-my-id" if echoed else None)
    assert response.headers["request-id"]
