"""Ports on 127.0.0.1 chosen at runtime (tests never use fixed ports)."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A port that nothing listens on: bound to learn a free number, then released.

    Another process could grab it in between; on a test machine that is rare
    enough, and the tests that use it only need a refused connection.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_range_is_free(first: int, count: int) -> bool:
    """True when every port in [first, first + count) can be bound on 127.0.0.1 now."""
    for port in range(first, first + count):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
