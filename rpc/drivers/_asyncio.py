"""The asyncio driver: runs a sans-I/O endpoint over a UDP socket on an asyncio event loop.

It is an ``asyncio.DatagramProtocol``: the loop calls :meth:`AsyncioDriver.datagram_received`
for each datagram, and the driver feeds it to the endpoint, hands the endpoint's events to its
owner's callback (synchronously, as the trio driver does), sends what the endpoint wants sent
and moves its one timer (``loop.call_later``) to the endpoint's next deadline. Only public asyncio
API, so it runs on the default loop and on uvloop alike.

ACKs are applied as they arrive (no deferral): the loop gives no cheap "about to wait" hook, and
applying them at once is always correct (``Endpoint.defer_acks`` is an optimisation).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any, Generic, cast

from rpc.drivers._io import (
    Address,
    DriverEndpoint,
    DriverStatistics,
    EventT,
    read_error_queue,
    timer_deadline,
)
from rpc.errors import ClientClosed


class AsyncioDriver(asyncio.DatagramProtocol, Generic[EventT]):
    """Runs ``endpoint`` over a datagram transport; events go to ``on_event`` synchronously.

    Create it with :meth:`open`. ``on_event`` runs in the loop's callback for the datagram (or
    timer) that caused the event and must not block. ``on_refused`` is called with the kernel's
    quotes of refused datagrams when a connected socket reports ECONNREFUSED (see
    ``rpc.drivers._trio.TrioDriver``).
    """

    def __init__(
        self,
        endpoint: DriverEndpoint[EventT],
        on_event: Callable[[EventT], None],
        loop: asyncio.AbstractEventLoop,
        *,
        on_refused: Callable[[list[bytes]], None] | None = None,
        sock: socket.socket | None = None,
        connected_to: Address | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._on_event = on_event
        self._loop = loop
        #: The endpoint's clock. Not ``loop.time()``: uvloop's is cached per loop iteration at
        #: millisecond resolution, too coarse for RTT samples on a LAN or loopback.
        self._clock = time.monotonic
        self._on_refused = on_refused
        #: The socket, for its error queue (what asyncio's transport does not expose).
        self._sock = sock
        #: The peer ``sock`` is connected to: datagrams to it go without an address (uvloop
        #: refuses an address on a connected socket, as BSD does).
        self._connected_to = connected_to
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._last_fire = float("-inf")
        self._closed = False
        self._lost = asyncio.Event()
        self._counts = dict.fromkeys(DriverStatistics.__dataclass_fields__, 0)
        #: The clock reading of the input whose events ``on_event`` is being given.
        self.input_time = float("-inf")

    @classmethod
    async def open(
        cls,
        endpoint: DriverEndpoint[EventT],
        on_event: Callable[[EventT], None],
        sock: socket.socket,
        *,
        on_refused: Callable[[list[bytes]], None] | None = None,
        connected_to: Address | None = None,
    ) -> AsyncioDriver[EventT]:
        """Take over the bound UDP socket ``sock`` (connected to ``connected_to``, if given)."""
        loop = asyncio.get_running_loop()
        driver = cls(
            endpoint, on_event, loop, on_refused=on_refused, sock=sock, connected_to=connected_to
        )
        await loop.create_datagram_endpoint(lambda: driver, sock=sock)
        return driver

    @property
    def address(self) -> Address:
        """The local address of the socket."""
        assert self._transport is not None
        name = self._transport.get_extra_info("sockname")
        return (str(name[0]), int(name[1]))

    # -- asyncio.DatagramProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The loop attached the socket."""
        # asyncio's datagram transports implement DatagramTransport without all subclassing it
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Feed one datagram to the endpoint, then deliver events and send."""
        now = self._clock()
        self._counts["datagrams_received"] += 1
        self.endpoint.receive_datagram(data, (addr[0], addr[1]), now=now)
        self._after_input(now)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error reported on the socket; a refusal ends the calls to the peer."""
        self._counts["receive_errors"] += 1
        if type(exc) is ConnectionRefusedError and self._on_refused is not None:
            quotes = read_error_queue(self._sock) if self._sock is not None else []
            self._on_refused(quotes)
            self._after_input(self._clock())

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport closed."""
        self._closed = True
        self._cancel_timer()
        self._lost.set()

    # -- the owner's API ----------------------------------------------------------------------

    def send_message(
        self, addr: Address, payload: bytes, *, keep_liveness_clock: bool = False
    ) -> int:
        """Queue ``payload`` for ``addr`` and send what can go now; returns the message id."""
        if self._closed:
            raise ClientClosed("the transport is closed")
        now = self._clock()
        message_id = self.endpoint.send_message(
            addr, payload, now=now, keep_liveness_clock=keep_liveness_clock
        )
        self._flush(now)
        return message_id

    def now(self) -> float:
        """The driver's clock (the endpoint's time)."""
        return self._clock()

    def abort(self) -> None:
        """Close the transport at once, sending nothing (a crash, as far as peers can tell)."""
        if not self._closed and self._transport is not None:
            self._closed = True
            self._cancel_timer()
            self._transport.abort()

    def statistics(self) -> DriverStatistics:
        """Socket-level counters."""
        return DriverStatistics(**self._counts)

    async def aclose(self) -> None:
        """End every session (an owed ACK and a CLOSE to each peer, best effort), send what
        is pending and close the transport."""
        if self._transport is None:
            return
        if not self._closed:
            now = self._clock()
            self.endpoint.close_all_peers(now=now)
            self._flush(now)
            self._closed = True
            self._cancel_timer()
            self._transport.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._lost.wait(), 1.0)

    # -- internals ----------------------------------------------------------------------------

    def _after_input(self, now: float) -> None:
        self.input_time = now
        next_event, on_event = self.endpoint.next_event, self._on_event
        while (event := next_event()) is not None:
            on_event(event)
        self._flush(now)

    def _flush(self, now: float) -> None:
        transport = self._transport
        if self._closed or transport is None:
            return
        counts, peer = self._counts, self._connected_to
        for data, addr in self.endpoint.datagrams_to_send(now=now):
            # The transport buffers what the socket cannot take.
            transport.sendto(data, None if addr == peer else addr)
            counts["datagrams_sent"] += 1
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = timer_deadline(self.endpoint.get_timer(), self._last_fire)
        if deadline is None:
            self._cancel_timer()
            return
        # A deadline that moved later keeps the earlier wake-up (it finds nothing due and
        # re-arms): moving a timer costs a handle, and in a request/response exchange the
        # retransmission deadline moves later on nearly every datagram.
        if deadline < self._timer_at:
            self._cancel_timer()
            self._timer_at = deadline
            delay = deadline - self._clock()
            self._timer = self._loop.call_later(delay if delay > 0 else 0, self._fire_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = float("inf")

    def _fire_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        if self._closed:
            return
        now = self._clock()
        deadline = self.endpoint.get_timer()
        if deadline is not None and deadline <= now:
            self._last_fire = now
            self._counts["timer_fires"] += 1
            self.endpoint.handle_timer(now=now)
        self._after_input(now)


__all__ = ["AsyncioDriver"]
