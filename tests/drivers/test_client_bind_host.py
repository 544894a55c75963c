"""Which local address a client socket binds (rpc.drivers._io.client_bind_host)."""

from __future__ import annotations

import pytest

from rpc.drivers._io import client_bind_host


@pytest.mark.parametrize(
    ("server", "local"),
    [
        ("127.0.0.1", "127.0.0.1"),  # loopback server: listen on loopback only
        ("127.0.0.53", "127.0.0.53"),
        ("::1", "::1"),
        ("192.0.2.7", "0.0.0.0"),  # elsewhere: the wildcard of the server's family
        ("2001:db8::1", "::"),
        ("fe80::1%eth0", "::"),  # scoped link-local: the IPv6 wildcard
    ],
)
def test_client_bind_host(server: str, local: str) -> None:
    assert client_bind_host(server) == local
