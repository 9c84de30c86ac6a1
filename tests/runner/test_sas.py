"""runner.sas: how long a job's SAS lasts, and what each SAS lets a node do, on real Azurite.

The service SAS (account key) runs against the session's Azurite; the user-delegation SAS
against an Azurite of its own serving HTTPS with OAuth, where a token of the shape Entra ID
issues (Azurite's basic OAuth checks its claims, not its signature) stands for a sign-in.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract import local as local_keys
from local_stack import servers
from runner import sas

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- how long ----------------------------------------------------------------------------


def test_lifetime_is_the_wait_plus_a_margin():
    assert sas.lifetime(None, None, 2) == sas.DEFAULT_WAIT + sas.MARGIN
    assert sas.lifetime(timedelta(minutes=30), None, 2) == timedelta(minutes=45)
    # One task's every attempt must fit, whatever the wait.
    assert sas.lifetime(timedelta(hours=1), timedelta(hours=3), 2) == timedelta(hours=6, minutes=15)
    assert sas.lifetime(timedelta(hours=1), timedelta(minutes=10), 2) == timedelta(minutes=75)
    assert sas.lifetime(None, timedelta(hours=3), 0) == sas.DEFAULT_WAIT + sas.MARGIN


def test_lifetime_beyond_a_week_is_refused():
    assert sas.lifetime(timedelta(days=7) - sas.MARGIN, None, 1) == sas.LONGEST
    with pytest.raises(sas.SasError, match="at most 7 days"):
        sas.lifetime(timedelta(days=7), None, 1)
    with pytest.raises(sas.SasError, match="managed identity"):
        sas.lifetime(None, timedelta(days=2), 4)


# --- what each SAS allows -----------------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _read(url: str, context: ssl.SSLContext | None = None) -> bytes:
    """As a node fetches a resource file: a plain GET of the URL, no credential."""
    with urllib.request.urlopen(url, timeout=30, context=context) as response:
        data: bytes = response.read()
    return data


def _status(call) -> int:
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value.status_code


def _check_least_privilege(
    signer: sas.Signer,
    blobs: BlobServiceClient,
    context: ssl.SSLContext | None = None,
    **client_options,
):
    inputs, outputs = blobs.get_container_client("input"), blobs.get_container_client("output")
    for container in (inputs, outputs):
        if not container.exists():
            container.create_container()
    inputs.upload_blob("job/mine.txt", b"my input", overwrite=True)
    inputs.upload_blob("job/other.txt", b"not mine", overwrite=True)
    outputs.upload_blob("other-job/result.txt", b"someone's result", overwrite=True)

    read_url = signer.read_blob(inputs.get_blob_client("job/mine.txt"))
    assert _read(read_url, context) == b"my input"
    query = _query(read_url)
    assert (query["sp"], query["sr"]) == ("r", "b")
    assert query["se"] == f"{signer.expiry:%Y-%m-%dT%H:%M:%SZ}"
    assert query["st"] == f"{signer.start:%Y-%m-%dT%H:%M:%SZ}"
    # That one blob only, and only to read it.
    other = read_url.replace("mine.txt", "other.txt")
    with pytest.raises(urllib.error.HTTPError) as caught:
        _read(other, context)
    assert caught.value.code == 403
    from_read_url = ContainerClient.from_container_url(
        read_url.replace("/job/mine.txt", ""), **client_options
    )
    assert _status(lambda: from_read_url.upload_blob("job/mine.txt", b"x", overwrite=True)) == 403

    write_url = signer.write_container(outputs)
    query = _query(write_url)
    assert (query["sp"], query["sr"]) == ("w", "c")
    node = ContainerClient.from_container_url(write_url, **client_options)
    node.upload_blob("job/t1/result.txt", b"first attempt")
    node.upload_blob("job/t1/result.txt", b"retried", overwrite=True)  # a retry overwrites
    assert outputs.download_blob("job/t1/result.txt").readall() == b"retried"
    # Writing is all: no reading, listing or deleting anyone's results.
    assert _status(lambda: node.download_blob("other-job/result.txt").readall()) == 403
    assert _status(lambda: list(node.list_blobs())) == 403
    assert _status(lambda: node.delete_blob("other-job/result.txt")) == 403
    return read_url, write_url


def test_a_service_sas_with_the_account_key(storage_connection):
    blobs = BlobServiceClient.from_connection_string(storage_connection)
    signer = sas.signer(blobs, timedelta(hours=1))
    assert signer.kind == "service"
    assert signer.expiry - signer.start == timedelta(hours=1) + sas.CLOCK_SKEW
    read_url, write_url = _check_least_privilege(signer, blobs)
    for url in (read_url, write_url):
        assert "skoid" not in _query(url)
        assert "spr" not in _query(url)  # Azurite here is plain HTTP
    assert local_keys.STORAGE_KEY not in repr(signer)


def test_a_service_sas_is_refused_once_expired(storage_connection):
    blobs = BlobServiceClient.from_connection_string(storage_connection)
    blobs.get_container_client("input").upload_blob("old/a.txt", b"a", overwrite=True)
    expired = sas.signer(blobs, timedelta(minutes=1), now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(urllib.error.HTTPError) as caught:
        _read(expired.read_blob(blobs.get_blob_client("input", "old/a.txt")))
    assert caught.value.code == 403


# --- the user-delegation SAS, as on Azure ------------------------------------------------


def _jwt(claims: dict[str, object]) -> str:
    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class EntraToken:
    """A token credential handing out tokens shaped like Entra ID's for Azure Storage."""

    TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    OBJECT = "11111111-2222-3333-4444-555555555555"

    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime

    def get_token(self, *scopes: str, **options: object) -> AccessToken:
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{self.TENANT}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + self.lifetime,
            "oid": self.OBJECT,
            "tid": self.TENANT,
        }
        return AccessToken(_jwt(claims), now + self.lifetime)


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "cert.pem", directory / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An Azurite serving HTTPS and accepting Entra ID tokens: its account URL and its CA."""
    data = tmp_path_factory.mktemp("azurite-oauth")
    certificate, key = _certificate(data)
    server = servers.start_azurite(
        data / "blobs", data / "azurite.log", oauth_tls=(certificate, key)
    )
    try:
        yield f"https://127.0.0.1:{server.port}/{local_keys.STORAGE_ACCOUNT}", certificate
    finally:
        servers.stop(server)


def test_a_user_delegation_sas_with_an_entra_id_token(oauth_azurite):
    url, certificate = oauth_azurite
    options = {"connection_verify": str(certificate)}
    blobs = BlobServiceClient(url, credential=EntraToken(), **options)
    signer = sas.signer(blobs, timedelta(hours=2))
    assert signer.kind == "user-delegation"
    assert signer.account_key is None
    context = ssl.create_default_context(cafile=str(certificate))
    read_url, write_url = _check_least_privilege(signer, blobs, context, **options)
    for query in (_query(read_url), _query(write_url)):
        assert query["skoid"] == EntraToken.OBJECT
        assert query["ske"] == query["se"]  # the key lasts exactly as long as the SAS
        assert query["spr"] == "https"
    assert "sig" not in repr(signer)


def test_no_user_delegation_key_is_a_sas_error_without_secrets(oauth_azurite):
    url, certificate = oauth_azurite
    expired = BlobServiceClient(
        url, credential=EntraToken(lifetime=-600), connection_verify=str(certificate)
    )
    with pytest.raises(sas.SasError, match="cannot get a user-delegation key") as caught:
        sas.signer(expired, timedelta(hours=1))
    assert "eyJ" not in str(caught.value)  # no token text
