"""The blocking driver: runs a sans-I/O endpoint over a plain socket, with no threads and no loop.

The synchronous client calls :meth:`BlockingDriver.send_message`, then :meth:`BlockingDriver.poll`
until its reply shows up in :meth:`BlockingDriver.events`. ``poll`` waits (in ``poll(2)``) for a
datagram or the endpoint's timer, whichever comes first, so the caller's own thread does all the
work: no hop into an event loop, which would cost more than the round trip itself. When recent
waits were short, it polls the socket for a while before it blocks (``rpc/drivers/_busy_poll.py``).
"""

from __future__ import annotations

import math
import select
import socket
import time
from collections.abc import Callable
from typing import Generic

from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, BusyPoll
from rpc.drivers._io import (
    BURST_HINT_BYTES,
    RECEIVE_BATCH,
    RECV_BUFSIZE,
    TIMER_GRANULARITY,
    Address,
    DriverEndpoint,
    DriverStatistics,
    EventT,
    ack_deferral,
    bind_udp_socket,
    deferred_ack_processor,
    local_address,
    read_error_queue,
)
from rpc.errors import ClientClosed

#: Longest a send waits for room in a full socket buffer before the datagram is dropped (the
#: endpoint retransmits it); bounded so that a wedged socket cannot hang a synchronous caller.
SEND_WAIT_LIMIT = 0.5
#: Longest single wait in poll(2), whose millisecond timeout is a C int (about 24 days): a later
#: deadline (even ``math.inf``) just means ``poll`` returns after this and the caller polls again.
MAX_WAIT = 3600.0

__all__ = ["BlockingDriver", "bind_udp_socket"]


def _milliseconds(timeout: float) -> int:
    """A poll(2) timeout: rounded up, so that we never wake before the timer, and capped."""
    return math.ceil(min(timeout, MAX_WAIT) * 1000)


def _wait(sock: socket.socket, *, writable: bool, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``sock`` to become readable (or writable)."""
    timeout = min(timeout, MAX_WAIT)
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT if writable else select.POLLIN)
        return bool(poller.poll(_milliseconds(timeout)))
    ready = (
        select.select([], [sock], [], timeout)
        if writable
        else select.select([sock], [], [], timeout)
    )
    return any(ready)


class BlockingDriver(Generic[EventT]):
    """Runs ``endpoint`` over ``sock`` (taken over and made non-blocking), on ``clock`` time."""

    def __init__(
        self,
        endpoint: DriverEndpoint[EventT],
        sock: socket.socket,
        *,
        clock: Callable[[], float] = time.monotonic,
        receive_batch: int = RECEIVE_BATCH,
        busy_poll: float = DEFAULT_BUSY_POLL,
        on_refused: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        #: Called when the connected socket reports ECONNREFUSED (see _refusal).
        self._on_refused = on_refused
        self._events_waiting = False
        self._handling_refusal = False
        #: Whether a wait for input polls the socket before it blocks (rpc/drivers/_busy_poll.py).
        self._busy_poll = BusyPoll(busy_poll)
        sock.setblocking(False)
        self.endpoint = endpoint
        self.socket = sock
        self._clock = clock
        self._batch = max(1, receive_batch)
        self._address = local_address(sock)
        self._last_fire = -math.inf
        self._bursting = False
        self._closed = False
        self._counts = dict.fromkeys(DriverStatistics.__dataclass_fields__, 0)
        #: Applies the ACKs the endpoint deferred: at the start of each poll, so a reply's
        #: ACK is applied while the caller waits for its next reply, not before it returns.
        deferring = ack_deferral(endpoint)
        if deferring is not None:  # the caller always reads for itself here
            deferring.defer_acks = True
        self._process_deferred_acks = deferred_ack_processor(deferring)
        self._poller = select.poll() if hasattr(select, "poll") else None
        if self._poller is not None:
            self._poller.register(sock, select.POLLIN)

    @property
    def address(self) -> Address:
        """The local address of the socket."""
        return self._address

    def send_message(
        self,
        addr: Address,
        payload: bytes,
        now: float | None = None,
        *,
        keep_liveness_clock: bool = False,
    ) -> int:
        """Queue ``payload`` for ``addr`` and send what can go now; returns the message id.

        ``now`` is the caller's own recent clock reading, which spares reading it again.
        ``keep_liveness_clock``: see ``Endpoint.send_message`` (liveness probes).
        """
        if self._closed:
            raise ClientClosed("the transport is closed")
        if now is None:
            now = self._clock()
        message_id = self.endpoint.send_message(
            addr, payload, now=now, keep_liveness_clock=keep_liveness_clock
        )
        self._flush(now)
        return message_id

    def poll(self, deadline: float, now: float | None = None) -> float:
        """Wait until a datagram arrives, the endpoint's timer is due or ``deadline`` passes.

        Then feed what arrived, run due timers and send what the endpoint wants sent. Returns
        at the latest at ``deadline`` (on this driver's clock), with the clock reading taken
        after the wait; events are left for :meth:`events` (or :meth:`dispatch_events`).
        ``now`` is the caller's own recent clock reading, which spares reading it again.
        """
        if self._closed:
            raise ClientClosed("the transport is closed")
        if now is None:
            now = self._clock()
        if self._process_deferred_acks():
            self._flush(now)  # what they caused (fast retransmissions) goes before the wait
        # Every blocking call passes here once or more: timer_deadline, _milliseconds and the
        # reading are inlined (each Python call costs about as much as the arithmetic it wraps).
        endpoint, last_fire = self.endpoint, self._last_fire
        timer = endpoint.get_timer()
        if timer is not None and timer < last_fire + TIMER_GRANULARITY:
            timer = last_fire + TIMER_GRANULARITY
        wake = deadline if timer is None or deadline < timer else timer
        if self._events_waiting:  # a refusal's events wait to be taken: no waiting
            self._events_waiting = False
            wake = now
        if wake > now:
            poller, busy_poll = self._poller, self._busy_poll
            if poller is not None and busy_poll.worthwhile():
                started = time.perf_counter()
                if not busy_poll.poll(wake - now, poller.poll, 0):
                    left = wake - now - (time.perf_counter() - started)
                    poller.poll(math.ceil(min(max(left, 0.0), MAX_WAIT) * 1000))
            elif poller is not None:
                poller.poll(math.ceil(min(wake - now, MAX_WAIT) * 1000))
            else:
                _wait(self.socket, writable=False, timeout=wake - now)
            now = self._clock()
        # Read what is waiting: one datagram, or a burst of them when a burst is likely, or
        # when a timer round follows (so that timers due at every poll cannot starve input).
        recvfrom, receive = self.socket.recvfrom, endpoint.receive_datagram
        received = 0
        bursting = self._bursting or (timer is not None and timer <= now)
        while received < self._batch:
            try:
                data, addr = recvfrom(RECV_BUFSIZE)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                self._counts["receive_errors"] += 1
                if type(exc) is ConnectionRefusedError:
                    self._refusal()
                break
            received += 1
            receive(data, (addr[0], addr[1]), now=now)
            if not bursting and len(data) < BURST_HINT_BYTES:
                break  # a lone small datagram (a reply, an ack): do not pay for a failed read
        self._bursting = received > 1
        self._counts["datagrams_received"] += received
        if timer is not None and timer <= now:
            # The timer we waited for is due, unless the input just read moved it: look again.
            # Only then: reading the timer costs ~3 us, and input alone makes no timer due at
            # once (an ACK it makes due at once goes out with the flush below).
            timer = endpoint.get_timer()
            if timer is not None:
                if timer < last_fire + TIMER_GRANULARITY:
                    timer = last_fire + TIMER_GRANULARITY
                if timer <= now:
                    self._last_fire = now
                    self._counts["timer_fires"] += 1
                    endpoint.handle_timer(now=now)
        self._flush(now)
        return now

    def apply_deferred_acks(self, now: float) -> bool:
        """Apply the ACKs the endpoint deferred and send what they caused; True if there were
        any (their events, e.g. a oneway call's MessageAcked, are then waiting)."""
        if self._closed or not self._process_deferred_acks():
            return False
        self._flush(now)
        return True

    def events(self) -> list[EventT]:
        """Every event the endpoint has produced since the last call, oldest first."""
        events = []
        next_event = self.endpoint.next_event
        while (event := next_event()) is not None:
            events.append(event)
        return events

    def dispatch_events(self, handle: Callable[[EventT], None]) -> None:
        """Pass every event the endpoint has produced since the last call to ``handle``."""
        next_event = self.endpoint.next_event
        while (event := next_event()) is not None:
            handle(event)

    def flush(self) -> None:
        """Send pending datagrams (after using the endpoint directly)."""
        self._flush(self._clock())

    def statistics(self) -> DriverStatistics:
        """Socket-level counters."""
        return DriverStatistics(**self._counts)

    def close(self) -> None:
        """End every session (an owed ACK and a CLOSE to each peer, best effort), send what
        is pending and close the socket."""
        if self._closed:
            return
        now = self._clock()
        self.endpoint.close_all_peers(now=now)
        self._flush(now)
        self._closed = True
        self.socket.close()

    # -- internals ------------------------------------------------------------------------

    def _refusal(self) -> None:
        """ECONNREFUSED on a connected socket: an ICMP port unreachable came back, so nothing
        listens at the peer. The owner's ``on_refused`` tells the endpoint; the next
        :meth:`poll` returns at once, so that the events it caused are taken without a wait."""
        if self._on_refused is None or self._handling_refusal:
            return
        # Linux reports the error ahead of datagrams already queued: handle those first (a
        # server's CLOSE, sent just before it exited, says more than the refusal after it).
        self._handling_refusal = True
        try:
            now = self._clock()
            for _ in range(self._batch):
                try:
                    data, addr = self.socket.recvfrom(RECV_BUFSIZE)
                except OSError:  # BlockingIOError (all read), or the refusal again
                    break
                self._counts["datagrams_received"] += 1
                self.endpoint.receive_datagram(data, (addr[0], addr[1]), now=now)
        finally:
            self._handling_refusal = False
        self._on_refused(read_error_queue(self.socket))
        self._events_waiting = True

    def _flush(self, now: float) -> None:
        if self._closed:
            return
        sendto, counts = self.socket.sendto, self._counts
        for data, addr in self.endpoint.datagrams_to_send(now=now):
            try:
                sendto(data, addr)
            except BlockingIOError:
                self._send(data, addr)  # wait for room (bounded), then send or drop
                continue
            except OSError as exc:  # unreachable network, datagram too large: lost, as on a wire
                counts["send_errors"] += 1
                if type(exc) is ConnectionRefusedError:
                    self._refusal()
                continue
            counts["datagrams_sent"] += 1

    def _send(self, data: bytes, addr: Address) -> None:
        counts = self._counts
        give_up = None
        while True:
            try:
                self.socket.sendto(data, addr)
            except BlockingIOError:
                counts["send_waits"] += 1
                now = self._clock()
                give_up = now + SEND_WAIT_LIMIT if give_up is None else give_up
                if now >= give_up or not _wait(self.socket, writable=True, timeout=give_up - now):
                    counts["send_drops"] += 1
                    return
                continue
            except OSError as exc:  # unreachable network, datagram too large: lost, as on a wire
                counts["send_errors"] += 1
                if type(exc) is ConnectionRefusedError:
                    self._refusal()
                return
            counts["datagrams_sent"] += 1
            return
