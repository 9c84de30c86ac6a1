"""Servers shared by the whole test session: Azurite, started once and always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner import services


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Server]:
    data = tmp_path_factory.mktemp("azurite")
    server = services.start_azurite(data / "blobs", data / "azurite.log")
    try:
        yield server
    finally:
        services.stop(server)


@pytest.fixture(scope="session")
def storage_connection(azurite: services.Server) -> str:
    return services.azurite_connection_string(azurite.port)
