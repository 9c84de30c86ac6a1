"""A server's port is chosen where no outgoing connection can take it while it restarts."""

from __future__ import annotations

import socket
from pathlib import Path

from local_stack import servers


def test_ports_are_chosen_below_the_ephemeral_range_and_are_free():
    range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first_ephemeral = int(range_file.read_text().split()[0]) if range_file.exists() else 32768
    ports = {servers.free_port() for _ in range(20)}
    assert all(servers.LISTENING_PORTS[0] <= port < first_ephemeral for port in ports)
    assert len(ports) > 1  # chosen at random: two stacks rarely reach for the same one
    for port in ports:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))
