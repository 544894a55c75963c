"""The blocking client: the same calls as :mod:`rpc.client`, for scripts and threaded programs.

::

    with rpc.SyncClient("127.0.0.1", 7000) as client:
        calc = CalculatorSyncClient(client)
        print(calc.add(1, 2, timeout=1.0))

It runs the transport on :class:`rpc.drivers._blocking.BlockingDriver` in the calling thread: no
event loop, no helper thread. The transport only makes progress (acks, retransmissions) while a call
is in progress, which is all a blocking client needs.

Thread safety: a ``SyncClient`` may be shared between threads; a lock serialises its calls, so
threads take turns (one call in flight at a time). For concurrency, give each thread its own
client or use the async client.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import TypeVar

from rpc.calls import callproto
from rpc.calls._call_table import (
    ACKED,
    CallTable,
    ClientStatistics,
    PendingCall,
    deadline_exceeded,
    probe_interval,
    reply_of,
)
from rpc.calls.retry import (
    Retries,
    RetryPolicy,
    check_retry,
    check_timeout,
    default_policy,
    lock_wait_expired,
    not_sent,
)
from rpc.calls.service import MethodSpec, ServiceSpec
from rpc.drivers._blocking import BlockingDriver, bind_udp_socket
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc.drivers._io import client_bind_host, connect_to_server
from rpc.errors import CallOutcome, ClientClosed, DeadlineExceeded, RpcError, SendBufferFull
from rpc.transport import events
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint

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
        retry: RetryPolicy | None = None,
    ) -> None:
        check_busy_poll(busy_poll)
        #: The calls' default retry policy (``NO_RETRY`` unless given one).
        self._retry = default_policy(retry)
        #: The clock of deadlines and the sleep of backoffs (tests replace them).
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep
        #: Calls that failed before they had the lock (counted apart from the table's counters,
        #: which only the lock's holder updates; ``statistics`` adds them up).
        self._unlocked_counts_lock = threading.Lock()
        self._unlocked_started = 0
        self._unlocked_failed: collections.Counter[str] = collections.Counter()
        self._server = _resolve(host, port)
        local = client_bind_host(self._server[0])
        try:
            sock = bind_udp_socket((local, 0))
        except OSError as exc:
            raise ClientClosed(f"cannot open a UDP socket: {exc}") from None
        self._endpoint = Endpoint(config, accept_new_peers=False)
        # Connected, an ICMP port unreachable ends the calls at once (_io.connect_to_server).
        refused = None
        if connect_to_server(sock, self._server):
            refused = partial(self._endpoint.report_refused, self._server)
        self._driver: BlockingDriver[events.TransportEvent] = BlockingDriver(
            self._endpoint, sock, busy_poll=busy_poll, on_refused=refused
        )
        self._table = CallTable()
        self._probe_interval = probe_interval(self._endpoint.config.peer_timeout)
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
        retry: RetryPolicy | None = None,
    ) -> R:
        """Make one call (used by generated sync clients); see ``rpc.SyncCaller``.

        ``timeout`` (seconds, ``None`` for none) is the one deadline of the whole call: the
        wait for another thread's call to finish, the handshake, every attempt and every
        backoff. ``retry`` overrides the client's default policy for this call
        (``rpc.NO_RETRY`` turns retrying off); a call backing off lets other threads' calls
        run. A ``timeout`` that is not a number raises ``TypeError`` and NaN ``ValueError``;
        one of 0 or less fails at once with ``DeadlineExceeded`` (``NOT_DELIVERED``), sending
        nothing.
        """
        if timeout is not None and not (type(timeout) is float and 0.0 < timeout < math.inf):
            timeout = check_timeout(service.name, method.name, timeout)
        policy = self._retry if retry is None else check_retry(service.name, method.name, retry)
        if timeout is not None and timeout <= 0:
            raise self._failed_unlocked(method, not_sent(timeout), None, started=True)
        lock, clock = self._lock, self._clock
        deadline: float | None = None  # set when the call starts waiting, or is encoded
        now: float | None = None
        retries = Retries(policy, method.idempotent) if policy.attempts > 1 else None
        first = True
        wire_args: object = None
        while True:
            if not lock.acquire(blocking=False):
                if first and timeout is not None:
                    deadline = clock() + timeout  # the wait for the lock counts
                if not self._wait_for_lock(deadline):
                    raise self._failed_unlocked(method, lock_wait_expired(), retries, first)
                if deadline is not None:
                    timeout = deadline - clock()  # the budget sent is the time left
            table = self._table
            try:
                if first:
                    table.started += 1
                    first = False
                    wire_args = table.encode_args(service, method, args)
                    now = clock()  # after encoding: the round trip's send time
                    if deadline is None and timeout is not None:
                        deadline = now + timeout
                else:
                    table.retries += 1
                result: R = self._attempt(service, method, wire_args, deadline, timeout, now)
                table.succeeded += 1
                return result
            except RpcError as exc:
                delay = None if retries is None else retries.next_delay(exc, clock(), deadline)
                if delay is None:
                    table.failed[type(exc).__name__] += 1
                    if method.idempotent:
                        exc.idempotent = True
                    raise
            finally:
                lock.release()
            self._sleep(delay)  # without the lock: other threads' calls go ahead meanwhile
            if deadline is not None:
                timeout = deadline - clock()
            now = None

    def _attempt(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        wire_args: object,
        deadline: float | None,
        timeout: float | None,
        now: float | None,
    ) -> R:
        """One attempt of a call, holding the lock: the handshake if needed, the round trip,
        the result. ``now`` is a fresh clock reading, or ``None``."""
        table = self._table
        if table.needs_handshake(method):
            self._handshake(deadline)
            now = None  # stale: the round trip reads the clock itself
            if deadline is not None:
                timeout = deadline - self._clock()
                if timeout <= 0:  # the handshake took all the time: send nothing
                    raise not_sent(timeout)
        pending, payload = table.build_call(service, method, wire_args, timeout)
        reply = self._round_trip(pending, payload, deadline, timeout, now)
        if reply is not None and reply[0] is callproto.Status.OK:
            result: R = reply[1]  # type: ignore[assignment]  # checked just below
            if type(result) is not method.result_plain:  # else valid as it is (bytes)
                result = table.finish(service, method, pending, reply)
        else:
            result = table.finish(service, method, pending, reply)
        return result

    def _wait_for_lock(self, deadline: float | None) -> bool:
        """Wait for another thread's call to finish, until the deadline; True with the lock."""
        if deadline is None:
            return self._lock.acquire()
        remaining = deadline - self._clock()
        return remaining > 0 and self._lock.acquire(timeout=min(remaining, threading.TIMEOUT_MAX))

    def _failed_unlocked(
        self, method: MethodSpec[R], exc: RpcError, retries: Retries | None, started: bool
    ) -> RpcError:
        """Count a call that failed without the lock (its time ran out before it had a turn),
        and make ``exc`` its error."""
        if retries is not None:
            retries.give_up(exc)
        if method.idempotent:
            exc.idempotent = True
        with self._unlocked_counts_lock:
            self._unlocked_started += started
            self._unlocked_failed[type(exc).__name__] += 1
        return exc

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
            interval = self._probe_interval
            next_probe = now + interval  # the probe timer runs only while a call waits
            while pending.result is None:
                if deadline is not None and now >= deadline:
                    break
                if now >= next_probe:
                    self._probe(now)
                    next_probe = now + interval
                now = driver.poll(
                    next_probe if deadline is None or next_probe < deadline else deadline, now
                )
                while (event := next_event()) is not None:  # driver.dispatch_events, inlined
                    handle(event)
                if pending.result is None and driver.apply_deferred_acks(now):
                    # An ACK read meanwhile may settle the call (a oneway call ends on its
                    # ACK): apply it now rather than after the next wait.
                    driver.dispatch_events(handle)
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

    def _probe(self, now: float) -> None:
        """One tick of the probe timer (see ``rpc.client.Client._probe_loop``)."""
        due = self._table.calls_to_probe()
        if due:
            self._table.probes += 1
            with contextlib.suppress(RpcError):  # buffer full or closed: the call times out
                self._driver.send_message(
                    self._server, callproto.encode_probe(due), now, keep_liveness_clock=True
                )

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
        stats = self._table.statistics(self._endpoint.statistics())
        with self._unlocked_counts_lock:
            if not self._unlocked_failed:
                return stats
            failed = collections.Counter(stats.calls_failed)
            failed.update(self._unlocked_failed)
            started = stats.calls_started + self._unlocked_started
        return dataclasses.replace(stats, calls_started=started, calls_failed=dict(failed))


def _resolve(host: str, port: int) -> Address:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ClientClosed(f"cannot resolve {host!r}: {exc}") from None
    addr = infos[0][4]
    return (str(addr[0]), int(addr[1]))


__all__ = ["SyncClient"]
