"""A UDP socket for trio that reads and writes without the trio socket wrapper.

:class:`TrioUdpSocket` implements ``rpc.drivers._io.FastDatagramSocket``: reads and writes go
straight to the socket and only wait (``trio.lowlevel.wait_readable`` / ``wait_writable``) when
it has nothing to give or no room, so the trio driver (``rpc.drivers._trio``) pays no extra
scheduling round after a wait. The driver reads its socket directly on the hot path.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Awaitable

import trio

from rpc.drivers._io import Address, bind_udp_socket, local_address, read_error_queue


class TrioUdpSocket:
    """A non-blocking UDP socket for trio; implements :class:`FastDatagramSocket`.

    Reads and writes go straight to the socket and only wait (``trio.lowlevel.wait_readable``
    / ``wait_writable``) when it has nothing to give or no room: no trio socket wrapper, no
    extra scheduling round after a wait.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._address = local_address(sock)
        self._closed = False
        # A second descriptor of the same socket for wait_readable: interrupting a wait on it
        # (notify_closing) cannot disturb a task waiting on the socket itself. Made lazily:
        # only clients lead, and the chaos proxy opens one socket per client address.
        self._wait_fd = -1

    def getsockname(self) -> Address:
        """The local address."""
        return self._address

    def fileno(self) -> int:
        """The file descriptor (for socket options)."""
        return self._sock.fileno()

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """Wait for a datagram."""
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            if self._closed:
                raise trio.ClosedResourceError("socket was closed")
            try:
                data, addr = self._sock.recvfrom(bufsize)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)
                waited = True
                continue
            if not waited:  # every trio operation is a schedule point, even when it is quick
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data, (addr[0], addr[1])

    def try_recvfrom(self, bufsize: int) -> tuple[bytes, Address] | None:
        """A datagram if one is waiting, else None."""
        if self._closed:
            raise trio.ClosedResourceError("socket was closed")
        try:
            data, addr = self._sock.recvfrom(bufsize)
        except BlockingIOError:
            return None
        return data, (addr[0], addr[1])

    def wait_readable(self) -> Awaitable[None]:
        """Wait until a datagram is waiting (it may be gone by the time the caller reads).

        Raises ``trio.ClosedResourceError`` when the socket is closed or the wait is
        interrupted (:meth:`interrupt_wait`). Returns trio's awaitable directly: one
        coroutine less per wait.
        """
        if self._closed:
            raise trio.ClosedResourceError("socket was closed")
        if self._wait_fd < 0:
            self._wait_fd = os.dup(self._sock.fileno())
        return trio.lowlevel.wait_readable(self._wait_fd)

    def interrupt_wait(self) -> None:
        """Make a task blocked in :meth:`wait_readable` raise ``trio.ClosedResourceError``."""
        if self._wait_fd >= 0:
            with contextlib.suppress(RuntimeError):  # outside trio: nobody can be waiting
                trio.lowlevel.notify_closing(self._wait_fd)

    async def sendto(self, data: bytes, addr: Address) -> None:
        """Send a datagram, waiting while the socket buffer is full."""
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while not self.try_sendto(data, addr):
            await trio.lowlevel.wait_writable(self._sock)
            waited = True
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def try_sendto(self, data: bytes, addr: Address) -> bool:
        """Send now if the socket buffer has room; False if it would block."""
        if self._closed:
            raise trio.ClosedResourceError("socket was closed")
        try:
            self._sock.sendto(data, addr)
        except BlockingIOError:
            return False
        return True

    def setsockopt(self, level: int, option: int, value: int) -> None:
        """Set a socket option."""
        self._sock.setsockopt(level, option, value)

    def read_error_queue(self) -> list[bytes]:
        """The starts of refused datagrams (see ``rpc.drivers._io.read_error_queue``)."""
        return read_error_queue(self._sock)

    def connect(self, addr: Address) -> None:
        """Connect the socket to ``addr``: it then receives only from there, and the kernel
        reports an ICMP port unreachable from there as ECONNREFUSED on the next read or send."""
        self._sock.connect(addr)

    def close(self) -> None:
        """Close the socket; tasks waiting on it get ``trio.ClosedResourceError``."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # closed outside trio: nobody can be waiting
            trio.lowlevel.notify_closing(self._sock)
        self._sock.close()
        if self._wait_fd >= 0:
            self.interrupt_wait()  # also unregisters it from trio's epoll before the close
            os.close(self._wait_fd)
            self._wait_fd = -1


async def open_udp_socket(host: str = "127.0.0.1", port: int = 0) -> TrioUdpSocket:
    """Bind a UDP socket for trio; ``host`` may be a name (resolved without blocking trio)."""
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    # Prefer IPv4 for names such as "localhost": servers here usually listen on 127.0.0.1.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    sockaddr = infos[0][4]
    return TrioUdpSocket(bind_udp_socket((str(sockaddr[0]), int(sockaddr[1]))))


__all__ = ["TrioUdpSocket", "open_udp_socket"]
