"""The async (trio) client: many concurrent calls to one server over one UDP socket.

::

    async with rpc.connect("127.0.0.1", 7000) as client:
        calc = CalculatorClient(client)
        print(await calc.add(1, 2, timeout=1.0))

A waiting call reads the socket itself when nobody else does (it *leads*, see
``rpc.drivers._trio.TrioDriver.lead``), so a sequential caller's reply costs no task hop. Other
waiting calls are parked with ``trio.lowlevel.wait_task_rescheduled`` and whoever reads the reply
(the leader or the driver's reader task) reschedules them directly from the transport's event
callback: one task hop.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, TypeVar

import trio

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
    not_sent,
)
from rpc.calls.service import MethodSpec, ServiceSpec
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc.drivers._deadlines import DeadlineWatcher, wake_expired
from rpc.drivers._io import DatagramSocket, client_bind_host, connect_to_server
from rpc.drivers._nursery import BackgroundNursery
from rpc.drivers._trio import TrioDriver, open_udp_socket
from rpc.errors import CallOutcome, ClientClosed, DeadlineExceeded, RpcError, SendBufferFull
from rpc.transport import events
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint

R = TypeVar("R")
Address = tuple[str, int]



def _is_waiting(pending: PendingCall) -> bool:
    return pending.wake is not None


class Client:
    """A connection to one server; implements ``rpc.AsyncCaller``. Create with :func:`connect`."""

    def __init__(
        self,
        endpoint: Endpoint,
        sock: DatagramSocket,
        server: Address,
        *,
        busy_poll: float = DEFAULT_BUSY_POLL,
        retry: RetryPolicy | None = None,
        connected: bool = False,
    ) -> None:
        self._endpoint = endpoint
        self._server = server
        #: The calls' default retry policy (``NO_RETRY`` unless ``connect`` was given one).
        self._retry = default_policy(retry)
        self._table = CallTable()
        self._table.on_capacity = self._on_capacity
        # ``connected``: ``sock`` is connected to the server, so an ICMP port unreachable
        # comes back as ECONNREFUSED and ends the calls at once (nothing listens there).
        self._driver: TrioDriver[events.TransportEvent] = TrioDriver(
            endpoint,
            sock,
            self._table.handle_event,
            busy_poll=busy_poll,
            on_refused=partial(endpoint.report_refused, server) if connected else None,
        )
        self._capacity = trio.Event()
        self._deadlines = DeadlineWatcher(_is_waiting, self._expire)
        #: A leading call's ``wake``: the leader may be blocked waiting for input (bound once,
        #: so that ``_expire`` can tell a leader's ``wake`` from a follower's by identity).
        self._wake_leader = self._driver.interrupt_leader
        self._probe_interval = probe_interval(endpoint.config.peer_timeout)
        #: The probe task while it is parked because no call is outstanding (see _probe_loop).
        self._prober: trio.lowlevel.Task | None = None

    @property
    def server_address(self) -> Address:
        """The server this client calls."""
        return self._server

    @property
    def local_address(self) -> Address:
        """The client's own socket address (where the server sees its calls come from)."""
        return self._driver.address

    # -- calls ------------------------------------------------------------------------------

    async def call(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        args: tuple[object, ...],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> R:
        """Make one call (used by generated clients); see ``rpc.AsyncCaller``.

        ``timeout`` (seconds, ``None`` for none) is the one deadline of the whole call: the
        handshake, every attempt and every backoff. ``retry`` overrides the client's default
        policy for this call (``rpc.NO_RETRY`` turns retrying off). A ``timeout`` that is not
        a number raises ``TypeError`` and NaN ``ValueError``; one of 0 or less fails at once
        with ``DeadlineExceeded`` (``NOT_DELIVERED``), sending nothing.
        """
        if timeout is not None and not (type(timeout) is float and 0.0 < timeout < math.inf):
            timeout = check_timeout(service.name, method.name, timeout)
        policy = self._retry if retry is None else check_retry(service.name, method.name, retry)
        table = self._table
        table.started += 1
        try:
            if timeout is not None and timeout <= 0:
                raise not_sent(timeout)
            wire_args = table.encode_args(service, method, args)
            deadline = None if timeout is None else trio.current_time() + timeout
            if policy.attempts == 1:
                result: R = await self._attempt(service, method, wire_args, deadline, timeout)
            else:
                result = await self._call_with_retries(
                    service, method, wire_args, deadline, timeout, policy
                )
        except RpcError as exc:
            table.failed[type(exc).__name__] += 1
            if method.idempotent:
                exc.idempotent = True
            raise
        table.succeeded += 1
        return result

    async def _attempt(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        wire_args: object,
        deadline: float | None,
        timeout: float | None,
    ) -> R:
        """One attempt of a call: the handshake if needed, the round trip, the result."""
        table = self._table
        if table.needs_handshake(method):
            await self._handshake(deadline)
            if deadline is not None:
                timeout = deadline - trio.current_time()
                if timeout <= 0:  # the handshake took all the time: send nothing
                    raise not_sent(timeout)
        pending, payload = table.build_call(service, method, wire_args, timeout)
        reply = await self._round_trip(pending, payload, deadline, timeout)
        if reply is not None and reply[0] is callproto.Status.OK:
            result: R = reply[1]  # type: ignore[assignment]  # checked just below
            if type(result) is not method.result_plain:  # else valid as it is (bytes)
                result = table.finish(service, method, pending, reply)
        else:
            result = table.finish(service, method, pending, reply)
        return result

    async def _call_with_retries(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        wire_args: object,
        deadline: float | None,
        timeout: float | None,
        policy: RetryPolicy,
    ) -> R:
        """Attempts under ``policy`` until one succeeds, all are made, or the deadline nears.

        Each attempt is a new call (a new call number) with the time that remains; the backoff
        between attempts never passes the deadline (when it would, the last error is raised
        at once). The error raised carries the outcome of all attempts together.
        """
        retries = Retries(policy, method.idempotent)
        while True:
            try:
                return await self._attempt(service, method, wire_args, deadline, timeout)
            except RpcError as exc:
                delay = retries.next_delay(exc, trio.current_time(), deadline)
                if delay is None:
                    raise
            await trio.sleep(delay)
            self._table.retries += 1
            if deadline is not None:
                timeout = deadline - trio.current_time()

    async def ping(self, *, timeout: float | None = None) -> float:
        """Call the server's null procedure; returns the round-trip time in seconds."""
        start = trio.current_time()
        pending, payload = self._table.build_ping()
        deadline = None if timeout is None else start + timeout
        await self._round_trip(pending, payload, deadline, timeout)
        return trio.current_time() - start

    async def _handshake(self, deadline: float | None) -> None:
        """Ping to learn the server's epoch before the first cached call.

        Each call that needs it sends its own ping, even when others are under way: under
        loss, parallel pings are redundancy (sharing one ping made every caller wait for its
        retransmission; see docs/rpc-layer.md §2.5).
        """
        pending, payload = self._table.build_ping()
        try:
            await self._round_trip(pending, payload, deadline, None)
        except RpcError as exc:
            exc.outcome = CallOutcome.NOT_DELIVERED  # the call itself was never sent
            raise

    async def _round_trip(
        self, pending: PendingCall, payload: bytes, deadline: float | None, timeout: float | None
    ) -> tuple[callproto.Status, object] | None:
        # The per-call hot path: send inline, then read the reply in this task (lead) or park
        # once; no helper coroutines and no cancel scope (the deadline watcher wakes a call
        # whose deadline passed: it then finds no result).
        driver = self._driver
        try:
            try:
                message_id = driver.send_message(self._server, payload)
            except SendBufferFull:
                message_id = await self._send_when_room(payload, deadline)
            self._table.sent(pending, message_id)
            if self._prober is not None:  # once per idle spell: the probe timer starts again
                trio.lowlevel.reschedule(self._prober)
                self._prober = None
            if pending.result is None:
                if deadline is not None:
                    self._deadlines.add(deadline, pending)
                if driver.can_lead():
                    pending.wake = self._wake_leader
                    if not await driver.lead_call(pending):
                        await self._follow(pending)  # the socket closed under us
                else:
                    await self._follow(pending)
            else:  # it finished while sending (rare): still a schedule point, as trio expects
                await trio.lowlevel.cancel_shielded_checkpoint()
            result = pending.result
            if result is not None:  # else the deadline passed
                # The deadline heap keeps finished calls' entries until its next prune (up to
                # PRUNE_SLACK of them): they must not keep their replies, possibly megabytes,
                # alive.
                pending.result = None
                if type(result) is tuple and result is not ACKED:
                    return result  # a reply (reply_of, inlined for the common case)
                return reply_of(result)
        except BaseException:  # cancelled, or failed: the server should stop working on it
            pending.wake = None
            self._abandon(pending)
            raise
        self._abandon(pending)
        raise deadline_exceeded(pending, timeout)

    async def _send_when_room(self, payload: bytes, deadline: float | None) -> int:
        """Backpressure: wait for the transport to drain (bounded by the deadline), then send."""
        while True:
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                await self._capacity.wait()
            if deadline is not None and trio.current_time() >= deadline:
                raise DeadlineExceeded(
                    "send buffer stayed full until the deadline",
                    outcome=CallOutcome.NOT_DELIVERED,
                )
            try:
                return self._driver.send_message(self._server, payload)
            except SendBufferFull:
                continue

    def _follow(self, pending: PendingCall) -> Any:
        """Park until the call finishes or its deadline passes (the caller then looks at its
        ``result``); an awaitable, without a coroutine."""
        task = pending.task = trio.lowlevel.current_task()
        driver = self._driver
        driver.followers += 1

        def wake() -> None:
            driver.followers -= 1
            trio.lowlevel.reschedule(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            # The task is rescheduled (cancelled) now: a reply or the deadline watcher arriving
            # before it runs must not reschedule it a second time.
            pending.wake = None
            driver.followers -= 1
            return trio.lowlevel.Abort.SUCCEEDED

        pending.wake = wake
        return trio.lowlevel.wait_task_rescheduled(abort)

    def _expire(self, pending: PendingCall) -> None:
        # A reply arriving now finds nobody to wake; the caller sees it.
        wake, pending.wake = pending.wake, None
        if wake is self._wake_leader:
            self._wake_leader()
        else:  # a follower
            self._driver.followers -= 1
            wake_expired(pending.task)

    def _abandon(self, pending: PendingCall) -> None:
        cancel = self._table.abandon(pending)
        if cancel is not None:
            with contextlib.suppress(RpcError):  # best effort: the server may not hear of it
                self._driver.send_message(self._server, cancel)

    async def _probe_loop(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Every probe interval while calls are outstanding, ask the server after the calls
        that were delivered and have waited since the last tick (``CallTable.calls_to_probe``).

        A live server acknowledges the probe (or re-sends a lost reply); a dead one leaves it
        unacknowledged, and the transport declares it unreachable ``peer_timeout`` after its
        last acknowledgement, failing every call. With no call outstanding the task parks
        until one is sent: an idle client neither wakes nor sends.
        """
        task_status.started()
        table = self._table
        while True:
            if not table.in_flight:
                self._prober = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort_probe_park)
            await trio.sleep(self._probe_interval)
            due = table.calls_to_probe()
            if due:
                table.probes += 1
                with contextlib.suppress(RpcError):  # buffer full or closed: calls time out
                    self._driver.send_message(
                        self._server, callproto.encode_probe(due), keep_liveness_clock=True
                    )

    def _abort_probe_park(self, _: object) -> trio.lowlevel.Abort:
        self._prober = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _on_capacity(self) -> None:
        self._capacity.set()
        self._capacity = trio.Event()

    # -- life cycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Fail outstanding calls with ``ClientClosed`` and refuse new ones."""
        self._table.close()

    def statistics(self) -> ClientStatistics:
        """A snapshot of this client's counters."""
        return self._table.statistics(self._endpoint.statistics())


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    config: TransportConfig | None = None,
    socket: DatagramSocket | None = None,
    busy_poll: float = DEFAULT_BUSY_POLL,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[Client]:
    """Open a client to ``host:port``; closes it (failing outstanding calls) on exit.

    ``socket`` is a ``DatagramSocket`` to use instead of a fresh UDP socket (for example
    ``rpc.testing.SimNetwork().socket()``); ``host`` must then be the server's address on that
    network. Calls may be made from any task while the block runs. ``busy_poll`` is the
    longest a call waiting alone for its reply polls the socket before it sleeps, while
    recent replies came that fast (seconds; 0 never polls; see the guide's "How a call
    waits"). ``retry`` is the calls' default ``rpc.RetryPolicy`` (none: no retries); each
    call may override it.
    """
    check_busy_poll(busy_poll)
    if socket is None:
        server = await _resolve(host, port)
        udp = await open_udp_socket(client_bind_host(server[0]), 0)
        connected = connect_to_server(udp, server)
        socket = udp
    else:
        server = (host, port)
        connected = False
    client = Client(
        Endpoint(config, accept_new_peers=False),
        socket,
        server,
        busy_poll=busy_poll,
        retry=retry,
        connected=connected,
    )
    try:
        async with BackgroundNursery() as nursery:
            await nursery.start(client._driver.run)
            await nursery.start(client._deadlines.run)
            await nursery.start(client._probe_loop)
            try:
                yield client
            finally:
                client.close()
                # The driver's close acknowledges the last replies at once and tells the
                # server to drop our session (a CLOSE): no need to linger for the ack delay.
                await client._driver.aclose()
                nursery.cancel_scope.cancel()
    finally:
        socket.close()


async def _resolve(host: str, port: int) -> Address:
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
    except OSError as exc:
        raise ClientClosed(f"cannot resolve {host!r}: {exc}") from None
    addr = infos[0][4]
    return (str(addr[0]), int(addr[1]))


__all__ = ["Client", "ClientStatistics", "connect"]
