"""The free-port probe hands out a port a server can bind and listen on."""

from __future__ import annotations

import socket

import pytest

from ilf_kedro.infra.ports import free_port


def test_a_free_port_can_be_bound_and_is_then_taken():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with socket.socket() as second, pytest.raises(OSError):
            second.bind(("127.0.0.1", port))
