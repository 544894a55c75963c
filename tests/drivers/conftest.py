"""Fixtures shared by the driver tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two UDP sockets on 127.0.0.1: ``a`` sends, ``b`` (non-blocking) is the one waited for."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
