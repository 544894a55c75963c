"""The asyncio client: the same calls as :mod:`rpc.client`, on an asyncio event loop.

::

    async with rpc.aio.connect("127.0.0.1", 7000) as client:
        calc = CalculatorClient(client)       # the generated client works on either loop
        print(await calc.add(1, 2, timeout=1.0))

Each waiting call awaits a future that the transport's event callback completes (the loop calls
the driver for every datagram); a deadline is one ``loop.call_later``. Everything else (checks,
handshake, retries within one deadline, outcomes, probes of long calls) is
:class:`rpc._call_flow.AsyncCallFlow`, shared with the trio client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from functools import partial

from rpc._call_flow import AsyncCallFlow
from rpc.calls import callproto
from rpc.calls._call_table import ACKED, ClientStatistics, PendingCall, deadline_exceeded, reply_of
from rpc.calls._call_table import probe_interval as probe_interval_for
from rpc.calls.retry import RetryPolicy
from rpc.drivers._asyncio import AsyncioDriver
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc.drivers._io import bind_udp_socket, client_bind_host, connect_to_server
from rpc.errors import CallOutcome, ClientClosed, DeadlineExceeded, SendBufferFull
from rpc.transport import events
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint

Address = tuple[str, int]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Client(AsyncCallFlow):
    """A connection to one server on asyncio; implements ``rpc.AsyncCaller``. Create with
    :func:`connect`."""

    def __init__(
        self,
        endpoint: Endpoint,
        server: Address,
        loop: asyncio.AbstractEventLoop,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(endpoint, server, retry)
        self._loop = loop
        self._now = time.monotonic  # the driver's clock (see rpc.drivers._asyncio)
        self._sleep = asyncio.sleep
        self._driver: AsyncioDriver[events.TransportEvent] | None = None
        self._capacity: asyncio.Event = asyncio.Event()
        self._table.on_capacity = self._on_capacity
        self._probe_interval = probe_interval_for(endpoint.config.peer_timeout)
        #: Set while the probe task is parked because no call is outstanding.
        self._probe_wake: asyncio.Future[None] | None = None

    @property
    def local_address(self) -> Address:
        """The client's own socket address (where the server sees its calls come from)."""
        assert self._driver is not None
        return self._driver.address

    def _send(self, payload: bytes, *, keep_liveness_clock: bool = False) -> int:
        if self._driver is None:
            raise ClientClosed("the client is not connected")
        return self._driver.send_message(
            self._server, payload, keep_liveness_clock=keep_liveness_clock
        )

    async def _round_trip(
        self, pending: PendingCall, payload: bytes, deadline: float | None, timeout: float | None
    ) -> tuple[callproto.Status, object] | None:
        try:
            try:
                message_id = self._send(payload)
            except SendBufferFull:
                message_id = await self._send_when_room(payload, deadline)
            self._table.sent(pending, message_id)
            if self._probe_wake is not None:  # once per idle spell: the probe timer restarts
                _wake(self._probe_wake)
                self._probe_wake = None
            if pending.result is None:
                future: asyncio.Future[None] = self._loop.create_future()
                pending.wake = partial(_wake, future)
                expiry = None
                if deadline is not None:
                    expiry = self._loop.call_later(deadline - self._now(), _wake, future)
                try:
                    await future
                finally:
                    if expiry is not None:
                        expiry.cancel()
            else:
                await asyncio.sleep(0)  # every await of a call yields to the loop once
            result = pending.result
            if result is not None:  # else the deadline passed
                pending.result = None
                if type(result) is tuple and result is not ACKED:
                    return result
                return reply_of(result)
        except BaseException:  # cancelled, or failed: the server should stop working on it
            pending.wake = None
            self._abandon(pending)
            raise
        pending.wake = None
        self._abandon(pending)
        raise deadline_exceeded(pending, timeout)

    async def _send_when_room(self, payload: bytes, deadline: float | None) -> int:
        """Backpressure: wait for the transport to drain (bounded by the deadline), then send."""
        while True:
            remaining = None if deadline is None else deadline - self._now()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(
                    "send buffer stayed full until the deadline",
                    outcome=CallOutcome.NOT_DELIVERED,
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._capacity.wait(), remaining)
            try:
                return self._send(payload)
            except SendBufferFull:
                continue

    def _on_capacity(self) -> None:
        self._capacity.set()
        self._capacity = asyncio.Event()

    async def _probe_loop(self) -> None:
        """A probe tick every probe interval while calls are outstanding; parked otherwise."""
        table = self._table
        while True:
            if not table.in_flight:
                self._probe_wake = self._loop.create_future()
                await self._probe_wake
            await asyncio.sleep(self._probe_interval)
            self._probe_tick()


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    config: TransportConfig | None = None,
    socket: object | None = None,
    busy_poll: float = DEFAULT_BUSY_POLL,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[Client]:
    """Open an asyncio client to ``host:port``; closes it (failing outstanding calls) on exit.

    The same arguments as :func:`rpc.connect`. ``socket`` (a trio simulated socket there) has
    no asyncio counterpart yet and must be None. ``busy_poll`` is checked and accepted: this
    client waits through the loop's selector without polling.
    """
    check_busy_poll(busy_poll)
    if socket is not None:
        raise ClientClosed("rpc.aio.connect takes no socket= (it opens a UDP socket itself)")
    loop = asyncio.get_running_loop()
    server = await _resolve(loop, host, port)
    try:
        sock = bind_udp_socket((client_bind_host(server[0]), 0))
    except OSError as exc:
        raise ClientClosed(f"cannot open a UDP socket: {exc}") from None
    endpoint = Endpoint(config, accept_new_peers=False)
    client = Client(endpoint, server, loop, retry=retry)
    refused, connected = None, connect_to_server(sock, server)
    if connected:
        refused = partial(endpoint.report_refused, server)
    client._driver = await AsyncioDriver.open(
        endpoint,
        client._table.handle_event,
        sock,
        on_refused=refused,
        connected_to=server if connected else None,
    )
    prober = loop.create_task(client._probe_loop())
    try:
        yield client
    finally:
        client.close()
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
        # The close acknowledges the last replies at once and tells the server to drop our
        # session (a CLOSE): no need to linger for the ack delay.
        await client._driver.aclose()


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> Address:
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ClientClosed(f"cannot resolve {host!r}: {exc}") from None
    addr = infos[0][4]
    return (str(addr[0]), int(addr[1]))


__all__ = ["Client", "ClientStatistics", "connect"]
