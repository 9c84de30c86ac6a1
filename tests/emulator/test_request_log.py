"""The emulator's request log, which the benchmarks count requests from."""

from __future__ import annotations

import pytest

from local_stack import servers
from tests.emulator.conftest import client_for

pytestmark = pytest.mark.served  # real processes, storage or authentication


def test_each_request_is_one_line(tmp_path):
    log = tmp_path / "requests.log"
    server = servers.start_emulator(tmp_path / "state", tmp_path / "emulator.log", request_log=log)
    try:
        client = client_for(server.url)
        list(client.list_pools())
        list(client.list_jobs())
    finally:
        servers.stop(server)
    assert log.read_text().splitlines() == ["GET /pools 200", "GET /jobs 200"]
