"""What the I/O drivers share: the socket and endpoint interfaces, UDP setup, driver counters.

The drivers (:mod:`rpc.drivers._trio`, :mod:`rpc.drivers._blocking`) are written against two small
protocols rather than concrete classes, so the simulated socket of :mod:`rpc.testing` and any object
with the sans-I/O endpoint's methods can be driven the same way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from rpc.drivers._heap import prefer_heap_for_large_buffers

Address = tuple[str, int]
EventT = TypeVar("EventT")
EventT_co = TypeVar("EventT_co", covariant=True)

#: Receive buffer for one datagram: the largest UDP payload is 65,507 bytes (65,535 minus the
#: IPv4 and UDP headers, RFC 768 / RFC 791), so this never truncates.
RECV_BUFSIZE = 65536
#: Datagrams read in one go before the driver processes events and flushes (coalesces acks).
RECEIVE_BATCH = 64
#: A datagram at least this large is probably one fragment of a bigger message, so more are
#: likely waiting right behind it; after a small one the drivers do not look (a failed
#: non-blocking read costs a syscall and an exception, ~3 us).
BURST_HINT_BYTES = 512
#: After a small datagram the drivers still look for another one every this many datagrams.
#: With many calls in flight, datagrams queue on the socket while one is handled, and each one
#: read through a wait costs a trip through the event loop (~20k instructions); once a look
#: finds one, the driver keeps draining until a look finds none. A look that finds nothing
#: costs ~3 us, so one in 16 costs a sequential caller about 0.2 us a datagram.
BURST_PROBE_INTERVAL = 16
#: Kernel socket buffer requested for each direction: large messages arrive in bursts of
#: datagrams, and a small default buffer (≈200 KiB on Linux) would drop them.
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
#: Shortest re-arm of a timer that is still due right after it fired; RFC 9002 §6.1.2 calls 1 ms
#: the timer granularity. Guards against spinning if an endpoint leaves a timer in the past.
TIMER_GRANULARITY = 0.001


class DatagramSocket(Protocol):
    """A bound datagram socket for :class:`rpc.drivers._trio.TrioDriver` (Contract 2)."""

    def getsockname(self) -> Address:
        """The local address."""
        ...

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """Wait for a datagram."""
        ...

    async def sendto(self, data: bytes, addr: Address) -> None:
        """Send a datagram, waiting while the socket cannot take it."""
        ...

    def close(self) -> None:
        """Close; pending and later operations raise ``trio.ClosedResourceError``."""
        ...


class FastDatagramSocket(DatagramSocket, Protocol):
    """A :class:`DatagramSocket` that can also send and receive without waiting.

    The driver uses these to keep a task switch out of the send path and to read a burst of
    datagrams per wakeup. Both raise ``trio.ClosedResourceError`` once closed.
    """

    def try_sendto(self, data: bytes, addr: Address) -> bool:
        """Send now if the socket can take it; False if it would block."""
        ...

    def try_recvfrom(self, bufsize: int) -> tuple[bytes, Address] | None:
        """A datagram if one is waiting, else None."""
        ...


class DriverEndpoint(Protocol[EventT_co]):
    """The sans-I/O endpoint methods a driver calls (``rpc.transport.Endpoint``, Contract 2)."""

    def send_message(
        self, addr: Address, payload: bytes, *, now: float, keep_liveness_clock: bool = False
    ) -> int:
        """Queue a message; returns its id."""
        ...

    def receive_datagram(self, data: bytes, addr: Address, *, now: float) -> None:
        """Feed one received datagram."""
        ...

    def handle_timer(self, *, now: float) -> None:
        """Run whatever timers are due."""
        ...

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Address]]:
        """Take every datagram ready to go out."""
        ...

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next be called."""
        ...

    def next_event(self) -> EventT_co | None:
        """The next event, or None."""
        ...

    def close_all_peers(self, *, now: float) -> None:
        """End every session cleanly (final ACKs and CLOSEs go out with the next flush)."""
        ...


@dataclass(frozen=True)
class DriverStatistics:
    """What a driver did at the socket level (the endpoint counts the protocol level)."""

    datagrams_sent: int = 0
    datagrams_received: int = 0
    send_errors: int = 0  # sendto failed (unreachable network, message too long...): dropped
    receive_errors: int = 0  # recvfrom failed (e.g. an ICMP error reported on the socket)
    send_waits: int = 0  # datagrams that found the socket buffer full and had to wait
    send_drops: int = 0  # datagrams dropped because the bounded send backlog was full
    timer_fires: int = 0


class DeferringEndpoint(Protocol):
    """An endpoint that can leave a datagram's ACK bookkeeping for later (``Endpoint``)."""

    defer_acks: bool

    def process_deferred_acks(self) -> bool:
        """Apply the deferred ACKs; True if there were any."""
        ...


def ack_deferral(endpoint: object) -> DeferringEndpoint | None:
    """``endpoint`` if it can defer ACK processing (``Endpoint.defer_acks``), else None.

    A driver that switches it on must call ``process_deferred_acks`` before it waits for
    input, and take the events and datagrams it causes; it then sends its response to a
    datagram before the bookkeeping of the ACK the datagram carried. A test double without
    the feature gets None and is driven as before.
    """
    if hasattr(endpoint, "defer_acks") and hasattr(endpoint, "process_deferred_acks"):
        return cast(DeferringEndpoint, endpoint)
    return None


def _no_deferred_acks() -> bool:
    return False


def deferred_ack_processor(endpoint: DeferringEndpoint | None) -> Callable[[], bool]:
    """``endpoint.process_deferred_acks``, or a function with nothing to do for no endpoint."""
    return _no_deferred_acks if endpoint is None else endpoint.process_deferred_acks


def timer_deadline(timer: float | None, last_fire: float) -> float | None:
    """The time to wake for ``timer``, never sooner than one granularity after the last fire.

    An endpoint whose timer is still due right after ``handle_timer`` (or due again a moment
    later) would otherwise make the driver spin; RFC 9002 §6.1.2 treats 1 ms as the timer
    granularity anyway. Each driver inlines this on its hot path: keep them alike.
    """
    earliest = last_fire + TIMER_GRANULARITY
    if timer is None or timer >= earliest:
        return timer
    return earliest


def bind_udp_socket(
    address: Address = ("127.0.0.1", 0), *, buffer_bytes: int = SOCKET_BUFFER_BYTES
) -> socket.socket:
    """A non-blocking UDP socket bound to a numeric ``address`` (port 0 picks a free port)."""
    prefer_heap_for_large_buffers()  # every real endpoint passes here; see rpc.drivers._heap
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            # The kernel may refuse or cap it; a smaller buffer still works.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class ConnectableSocket(Protocol):
    """A socket that can be connected to one peer (``socket.socket``, ``TrioUdpSocket``)."""

    def connect(self, address: Address) -> None:
        """Connect to ``address``."""
        ...

    def setsockopt(self, level: int, option: int, value: int) -> None:
        """Set a socket option."""
        ...


#: Linux <linux/in.h> and <linux/in6.h>: queue the ICMP errors a socket's datagrams caused, with
#: the start of each refused datagram (Python's socket module does not name them).
IP_RECVERR = 11
IPV6_RECVERR = 25
#: Refused datagrams read from the error queue at once at most (the queue is bounded by the
#: socket's receive buffer anyway).
MAX_QUEUED_ERRORS = 64
#: Bytes of a refused datagram worth reading back: its header is all the endpoint looks at.
QUOTE_BYTES = 64


def read_error_queue(sock: socket.socket) -> list[bytes]:
    """The starts of the datagrams whose ICMP errors wait in ``sock``'s error queue (Linux,
    after :func:`connect_to_server`); empty elsewhere."""
    quotes: list[bytes] = []
    errqueue = getattr(socket, "MSG_ERRQUEUE", None)
    if errqueue is None:
        return quotes
    for _ in range(MAX_QUEUED_ERRORS):
        try:
            data, _, _, _ = sock.recvmsg(QUOTE_BYTES, 512, errqueue)
        except OSError:  # BlockingIOError: the queue is empty
            break
        quotes.append(data)
    return quotes


def connect_to_server(sock: ConnectableSocket, server: Address) -> bool:
    """Connect a client's UDP socket to its server, where that is safe; True if connected.

    A connected socket receives only from the server, and the kernel reports an ICMP port
    unreachable from it as ECONNREFUSED, so a call to a port where nothing listens fails in
    a round trip instead of after ``peer_timeout``. Only on Linux: the drivers send with
    ``sendto``, which BSD and macOS refuse on a connected socket (EISCONN).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        sock.connect(server)
    except OSError:
        return False  # still usable unconnected; refusals are then noticed by silence only
    # The error queue says which datagram was refused (read_error_queue), hence which calls
    # certainly never arrived; without it a refusal still ends the calls, less precisely.
    ipv6 = ":" in server[0]
    with contextlib.suppress(OSError):
        sock.setsockopt(
            socket.IPPROTO_IPV6 if ipv6 else socket.IPPROTO_IP,
            IPV6_RECVERR if ipv6 else IP_RECVERR,
            1,
        )
    return True


def client_bind_host(server_host: str) -> str:
    """The local address a client socket binds to reach ``server_host`` (a numeric address).

    A loopback server is reached from loopback, so the client listens on no other interface;
    otherwise the wildcard of the server's family lets the kernel pick the route.
    """
    try:
        address = ipaddress.ip_address(server_host)
    except ValueError:
        return "::" if ":" in server_host else "0.0.0.0"
    if address.is_loopback:
        return str(address)
    return "::" if address.version == 6 else "0.0.0.0"


def local_address(sock: socket.socket) -> Address:
    """The (host, port) a socket is bound to (IPv6 flow and scope ids dropped)."""
    name = sock.getsockname()
    return (str(name[0]), int(name[1]))
