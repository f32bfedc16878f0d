"""free_port() gives ports an outgoing connection cannot take before the server binds them."""

from __future__ import annotations

import socket

from msa_cli.devstack import _ephemeral_range, free_port


def test_free_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports), "a port is handed out once per process"
    assert all(1024 < port < low for port in ports), (ports, low)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
