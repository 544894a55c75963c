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

from rpc._call_flow import AsyncCallFlow
from rpc.calls import callproto
from rpc.calls._call_table import (
    ACKED,
    ClientStatistics,
    PendingCall,
    deadline_exceeded,
    probe_interval,
    reply_of,
)
from rpc.calls.retry import (
    RetryPolicy,
)
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc.drivers._deadlines import DeadlineWatcher, wake_expired
from rpc.drivers._io import DatagramSocket, client_bind_host, connect_to_server
from rpc.drivers._nursery import BackgroundNursery
from rpc.drivers._trio import TrioDriver, open_udp_socket
from rpc.errors import CallOutcome, ClientClosed, DeadlineExceeded, SendBufferFull
from rpc.transport import events
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint

R = TypeVar("R")
Address = tuple[str, int]



def _is_waiting(pending: PendingCall) -> bool:
    return pending.wake is not None


class Client(AsyncCallFlow):
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
        super().__init__(endpoint, server, retry)
        self._now = trio.current_time
        self._sleep = trio.sleep
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
    def local_address(self) -> Address:
        """The client's own socket address (where the server sees its calls come from)."""
        return self._driver.address

    def _send(self, payload: bytes, *, keep_liveness_clock: bool = False) -> int:
        if keep_liveness_clock:
            return self._driver.send_message(self._server, payload, keep_liveness_clock=True)
        return self._driver.send_message(self._server, payload)

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

    async def _probe_loop(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """A probe tick (``AsyncCallFlow._probe_tick``) every probe interval while calls are
        outstanding. With no call outstanding the task parks until one is sent: an idle
        client neither wakes nor sends."""
        task_status.started()
        table = self._table
        while True:
            if not table.in_flight:
                self._prober = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort_probe_park)
            await trio.sleep(self._probe_interval)
            self._probe_tick()

    def _abort_probe_park(self, _: object) -> trio.lowlevel.Abort:
        self._prober = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _on_capacity(self) -> None:
        self._capacity.set()
        self._capacity = trio.Event()

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
