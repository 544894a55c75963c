"""The blocking client: the same calls as :mod:`rpc.client`, for scripts and threaded programs.

::

    with rpc.SyncClient("127.0.0.1", 7000) as client:
        calc = CalculatorSyncClient(client)
        print(calc.add(1, 2, timeout=1.0))

It runs the transport on :class:`rpc._blocking.BlockingDriver` in the calling thread: no event
loop, no helper thread. The transport only makes progress (acks, retransmissions) while a call
is in progress, which is all a blocking client needs.

Thread safety: a ``SyncClient`` may be shared between threads; a lock serialises its calls, so
threads take turns (one call in flight at a time). For concurrency, give each thread its own
client or use the async client.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import TypeVar

from rpc import callproto, events
from rpc._blocking import BlockingDriver, bind_udp_socket
from rpc._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc._calls import (
    ACKED,
    CallTable,
    ClientStatistics,
    PendingCall,
    deadline_exceeded,
    reply_of,
)
from rpc._io import client_bind_host
from rpc.config import TransportConfig
from rpc.endpoint import Endpoint
from rpc.errors import CallOutcome, ClientClosed, DeadlineExceeded, RpcError, SendBufferFull
from rpc.service import MethodSpec, ServiceSpec

R = TypeVar("R")
Address = tuple[str, int]

#: How long one ``poll`` may sleep when the call has no deadline; the loop simply polls again
#: (the transport's peer timeout ends a call to a dead server).
IDLE_POLL = 3600.0


class SyncClient:
    """A blocking connection to one server; implements ``rpc.SyncCaller``.

    ``busy_poll`` is the longest a call polls the socket for its reply before it sleeps, while
    recent replies came that fast (seconds; 0 never polls; see the guide's "How a call waits").
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        config: TransportConfig | None = None,
        busy_poll: float = DEFAULT_BUSY_POLL,
    ) -> None:
        check_busy_poll(busy_poll)
        self._server = _resolve(host, port)
        local = client_bind_host(self._server[0])
        try:
            sock = bind_udp_socket((local, 0))
        except OSError as exc:
            raise ClientClosed(f"cannot open a UDP socket: {exc}") from None
        self._endpoint = Endpoint(config, accept_new_peers=False)
        self._driver: BlockingDriver[events.TransportEvent] = BlockingDriver(
            self._endpoint, sock, busy_poll=busy_poll
        )
        self._table = CallTable()
        self._lock = threading.Lock()

    @property
    def server_address(self) -> Address:
        """The server this client calls."""
        return self._server

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        args: tuple[object, ...],
        *,
        timeout: float | None = None,
    ) -> R:
        """Make one call (used by generated sync clients); see ``rpc.SyncCaller``."""
        with self._lock:
            table = self._table
            table.started += 1
            try:
                wire_args = table.encode_args(service, method, args)
                now = time.monotonic()
                deadline = None if timeout is None else now + timeout
                if table.needs_handshake(method):
                    self._handshake(deadline)
                    now = time.monotonic()
                    if deadline is not None:
                        timeout = deadline - now
                pending, payload = table.build_call(service, method, wire_args, timeout)
                reply = self._round_trip(pending, payload, deadline, timeout, now)
                if reply is not None and reply[0] is callproto.Status.OK:
                    result: R = reply[1]  # type: ignore[assignment]  # checked just below
                    if type(result) is not method.result_plain:  # else valid as it is (bytes)
                        result = table.finish(service, method, pending, reply)
                else:
                    result = table.finish(service, method, pending, reply)
            except RpcError as exc:
                self._table.failed[type(exc).__name__] += 1
                raise
            self._table.succeeded += 1
            return result

    def ping(self, *, timeout: float | None = None) -> float:
        """Call the server's null procedure; returns the round-trip time in seconds."""
        with self._lock:
            start = time.monotonic()
            pending, payload = self._table.build_ping()
            deadline = None if timeout is None else start + timeout
            self._round_trip(pending, payload, deadline, timeout)
            return time.monotonic() - start

    def _handshake(self, deadline: float | None) -> None:
        """Ping to learn the server's epoch before the first cached call."""
        pending, payload = self._table.build_ping()
        try:
            self._round_trip(pending, payload, deadline, None)
        except RpcError as exc:
            exc.outcome = CallOutcome.NOT_DELIVERED  # the call itself was never sent
            raise

    def _round_trip(
        self,
        pending: PendingCall,
        payload: bytes,
        deadline: float | None,
        timeout: float | None,
        now: float | None = None,
    ) -> tuple[callproto.Status, object] | None:
        # ``now`` is the caller's clock reading from just before (it saves reading the clock
        # again: sending, the deadline check and the first wait only need it to within
        # microseconds). The per-call hot path: send, then poll until the result is in.
        driver, table = self._driver, self._table
        handle, next_event = table.handle_event, driver.endpoint.next_event
        try:
            try:
                message_id = driver.send_message(self._server, payload, now)
            except SendBufferFull:
                message_id = self._send_when_room(payload, deadline)
            table.sent(pending, message_id)
            if now is None:
                now = time.monotonic()
            while pending.result is None:
                if deadline is not None and now >= deadline:
                    break
                now = driver.poll(now + IDLE_POLL if deadline is None else deadline, now)
                while (event := next_event()) is not None:  # driver.dispatch_events, inlined
                    handle(event)
            result = pending.result
            if type(result) is tuple and result is not ACKED:
                return result  # a reply (reply_of, inlined for the common case)
            if result is not None:  # else the deadline passed
                return reply_of(result)
        except BaseException:  # includes KeyboardInterrupt: tell the server, best effort
            self._abandon(pending)
            raise
        self._abandon(pending)
        raise deadline_exceeded(pending, timeout)

    def _send_when_room(self, payload: bytes, deadline: float | None) -> int:
        """Backpressure: poll until the transport has room (bounded by the deadline), send."""
        driver = self._driver
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise DeadlineExceeded(
                    "send buffer stayed full until the deadline",
                    outcome=CallOutcome.NOT_DELIVERED,
                )
            driver.poll(now + IDLE_POLL if deadline is None else deadline, now)
            driver.dispatch_events(self._table.handle_event)
            try:
                return driver.send_message(self._server, payload)
            except SendBufferFull:
                continue

    def _abandon(self, pending: PendingCall) -> None:
        cancel = self._table.abandon(pending)
        if cancel is not None:
            with contextlib.suppress(RpcError):  # best effort: the server may not hear of it
                self._driver.send_message(self._server, cancel)

    def close(self) -> None:
        """Close the socket; later calls raise ``ClientClosed``.

        Waits for a call in progress in another thread to finish first. The driver's close
        acknowledges the last reply at once and sends a CLOSE, so the server neither keeps
        retransmitting it nor keeps our session in its reply cache.
        """
        with self._lock:
            if self._table.closed:
                return
            self._table.close()
            self._driver.close()

    def statistics(self) -> ClientStatistics:
        """A snapshot of this client's counters."""
        return self._table.statistics(self._endpoint.statistics())


def _resolve(host: str, port: int) -> Address:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ClientClosed(f"cannot resolve {host!r}: {exc}") from None
    addr = infos[0][4]
    return (str(addr[0]), int(addr[1]))


__all__ = ["SyncClient"]
