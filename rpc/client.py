"""The async (trio) client: many concurrent calls to one server over one UDP socket.

::

    async with rpc.connect("127.0.0.1", 7000) as client:
        calc = CalculatorClient(client)
        print(await calc.add(1, 2, timeout=1.0))

A waiting call reads the socket itself when nobody else does (it *leads*, see
``rpc._trio.TrioDriver.lead``), so a sequential caller's reply costs no task hop. Other waiting
calls are parked with ``trio.lowlevel.wait_task_rescheduled`` and whoever reads the reply (the
leader or the driver's reader task) reschedules them directly from the transport's event
callback: one task hop.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import trio

from rpc import callproto, events
from rpc._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc._calls import (
    ACKED,
    CallTable,
    ClientStatistics,
    PendingCall,
    deadline_exceeded,
    reply_of,
)
from rpc._deadlines import DeadlineWatcher, wake_expired
from rpc._io import DatagramSocket, client_bind_host
from rpc._nursery import BackgroundNursery
from rpc._trio import TrioDriver, open_udp_socket
from rpc.config import TransportConfig
from rpc.endpoint import Endpoint
from rpc.errors import CallOutcome, ClientClosed, DeadlineExceeded, RpcError, SendBufferFull
from rpc.service import MethodSpec, ServiceSpec

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
    ) -> None:
        self._endpoint = endpoint
        self._server = server
        self._table = CallTable()
        self._table.on_capacity = self._on_capacity
        self._driver: TrioDriver[events.TransportEvent] = TrioDriver(
            endpoint, sock, self._table.handle_event, busy_poll=busy_poll
        )
        self._capacity = trio.Event()
        self._deadlines = DeadlineWatcher(_is_waiting, self._expire)
        #: A leading call's ``wake``: the leader may be blocked waiting for input (bound once,
        #: so that ``_expire`` can tell a leader's ``wake`` from a follower's by identity).
        self._wake_leader = self._driver.interrupt_leader

    @property
    def server_address(self) -> Address:
        """The server this client calls."""
        return self._server

    # -- calls ------------------------------------------------------------------------------

    async def call(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        args: tuple[object, ...],
        *,
        timeout: float | None = None,
    ) -> R:
        """Make one call (used by generated clients); see ``rpc.AsyncCaller``."""
        table = self._table
        table.started += 1
        try:
            wire_args = table.encode_args(service, method, args)
            deadline = None if timeout is None else trio.current_time() + timeout
            if table.needs_handshake(method):
                await self._handshake(deadline)
                if deadline is not None:
                    timeout = deadline - trio.current_time()
            pending, payload = table.build_call(service, method, wire_args, timeout)
            reply = await self._round_trip(pending, payload, deadline, timeout)
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
) -> AsyncIterator[Client]:
    """Open a client to ``host:port``; closes it (failing outstanding calls) on exit.

    ``socket`` is a ``DatagramSocket`` to use instead of a fresh UDP socket (for example
    ``rpc.testing.SimNetwork().socket()``); ``host`` must then be the server's address on that
    network. Calls may be made from any task while the block runs. ``busy_poll`` is the
    longest a call waiting alone for its reply polls the socket before it sleeps, while
    recent replies came that fast (seconds; 0 never polls; see the guide's "How a call
    waits").
    """
    check_busy_poll(busy_poll)
    if socket is None:
        server = await _resolve(host, port)
        socket = await open_udp_socket(client_bind_host(server[0]), 0)
    else:
        server = (host, port)
    client = Client(Endpoint(config, accept_new_peers=False), socket, server, busy_poll=busy_poll)
    try:
        async with BackgroundNursery() as nursery:
            await nursery.start(client._driver.run)
            await nursery.start(client._deadlines.run)
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
