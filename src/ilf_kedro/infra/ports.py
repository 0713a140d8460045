"""A free TCP port on loopback: for the servers the project starts (a served model, the
nodes of a loopback Ray cluster, the rendezvous of fine-tuning ranks)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` nothing listens on right now, as the OS picks it (another
    process may still take it before the caller binds it: any such probe races)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
