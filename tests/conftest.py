"""Servers shared by the whole test session: Azurite, started once and always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack import servers


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    data = tmp_path_factory.mktemp("azurite")
    server = servers.start_azurite(data / "blobs", data / "azurite.log")
    try:
        yield server
    finally:
        servers.stop(server)


@pytest.fixture(scope="session")
def storage_connection(azurite: servers.Server) -> str:
    return servers.azurite_connection_string(azurite.port)
