"""The trio driver: runs a sans-I/O endpoint over a datagram socket with the fewest task hops.

One reader task does everything that input causes: it waits for a datagram *or* the endpoint's
timer (the timer is the deadline of the cancel scope around the read, so a timer costs no extra
task and no wakeup per datagram), feeds the endpoint, hands its events synchronously to the
runtime's callback and sends what the endpoint wants sent. ``send_message`` runs in the caller's
task and sends at once with a non-blocking ``try_sendto``; only when the socket buffer is full do
datagrams go to a backlog drained by a writer task. A reply therefore reaches its waiting caller
with at most one task hop: reader → caller.

A caller may also read the socket itself (:meth:`TrioDriver.lead`): when no task is on the
socket, the first caller to wait becomes the *leader* and handles whatever arrives until its own
result is in, so a sequential client's reply costs no task hop at all. Other callers meanwhile
park as followers and are woken by the leader (or by the reader task, which takes the socket
back when the leader leaves with followers still waiting). The reader task keeps the timer
throughout, so retransmission and ack-delay timers fire while a leader waits. When the reader
has woken the last waiting follower, or a leader leaves with nobody waiting, the reader stands
aside until its next wake-up (its timer, or :data:`LEADER_GRACE` at the latest), so that the
caller's next call can lead; if none does, the reader then takes the socket back.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, Protocol

import trio

from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL
from rpc.drivers._idle_wait import IdleWait
from rpc.drivers._io import (
    BURST_HINT_BYTES,
    BURST_PROBE_INTERVAL,
    RECEIVE_BATCH,
    RECV_BUFSIZE,
    TIMER_GRANULARITY,
    Address,
    DatagramSocket,
    DriverEndpoint,
    DriverStatistics,
    EventT,
    FastDatagramSocket,
    ack_deferral,
    deferred_ack_processor,
    timer_deadline,
)
from rpc.drivers._trio_socket import TrioUdpSocket, open_udp_socket
from rpc.errors import ClientClosed

#: Datagrams waiting for a full socket buffer to drain; beyond this they are dropped (and
#: counted): the endpoint retransmits what is lost, and a runaway backlog would only add delay.
SEND_BACKLOG_LIMIT = 4096
#: Longest the reader task stays off the socket after a leader left (or after it woke the last
#: waiting follower): it comes back at its next wake-up, normally the endpoint's timer (the ack
#: owed for the reply just read: max_ack_delay, 5 ms by default), and this bounds the wait when
#: there is no timer. A sequential caller's next call normally starts well within it and leads.
#: Only datagrams arriving while no call waits can be delayed by it, and nobody waits for those.
#: A bound at or above the usual timer costs no extra wake-up (each costs ~30 us here).
LEADER_GRACE = 0.005
#: A reader's wake-up due within this long is moved along with a timer that moved later (when a
#: leader leaves, or when the reader on the socket handles input), instead of waking the reader
#: early for nothing.
EARLY_WAKE_MARGIN = 0.001

__all__ = [
    "DatagramSocket",
    "DriverStatistics",
    "FastDatagramSocket",
    "TrioDriver",
    "TrioUdpSocket",
    "open_udp_socket",
]


def _never_sends(data: bytes, addr: Address) -> bool:
    return False


def _never_receives(bufsize: int) -> tuple[bytes, Address] | None:
    return None


def _nothing() -> None:
    pass


class Waiter(Protocol):
    """What :meth:`TrioDriver.lead_call` waits on: its ``wake`` becomes None when it is done."""

    wake: Callable[[], None] | None


def _woken(call: Waiter) -> bool:
    return call.wake is None


class TrioDriver(Generic[EventT]):
    """Runs ``endpoint`` over ``sock`` inside trio; events go to ``on_event`` synchronously.

    Start it with ``await nursery.start(driver.run)``. ``on_event`` runs in the reader task and
    must not block (set a ``trio.Event``, put into a channel with ``send_nowait``...).
    ``respond_first`` suits an owner that answers what it receives (a server): the reader
    sends what handling a datagram queued before it applies the ACK the datagram carried.
    ``busy_poll`` is the longest a wait for input polls the socket before it blocks, when
    recent waits were that short (seconds; 0 never polls; see ``rpc/drivers/_busy_poll.py``).
    ``on_refused`` is called when a connected socket reports ECONNREFUSED.
    """

    def __init__(
        self,
        endpoint: DriverEndpoint[EventT],
        sock: DatagramSocket,
        on_event: Callable[[EventT], None],
        *,
        receive_batch: int = RECEIVE_BATCH,
        respond_first: bool = False,
        busy_poll: float = DEFAULT_BUSY_POLL,
        on_refused: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        #: Called when the network refuses datagrams on a connected socket (ICMP port
        #: unreachable, reported as ECONNREFUSED): a client tells its endpoint (_handle_refusal).
        self._on_refused = on_refused
        self._refused = False
        self._handling_refusal = False
        self.socket = sock
        self._on_event = on_event
        self._batch = max(1, receive_batch)
        self._try_sendto: Callable[[bytes, Address], bool] = getattr(
            sock, "try_sendto", _never_sends
        )
        #: The socket when it is a TrioUdpSocket, whose reads and sends the driver inlines.
        self._udp = sock if type(sock) is TrioUdpSocket else None
        self._try_recvfrom: Callable[[int], tuple[bytes, Address] | None] = getattr(
            sock, "try_recvfrom", _never_receives
        )
        wait_readable = getattr(sock, "wait_readable", None)
        interrupt_wait = getattr(sock, "interrupt_wait", None)
        #: Callers can lead only on a socket whose wait for input can be interrupted.
        self._can_lead = wait_readable is not None and interrupt_wait is not None
        self._wait_readable: Callable[[], Awaitable[None]] = wait_readable or trio.sleep_forever
        self._interrupt_wait: Callable[[], None] = interrupt_wait or _nothing
        #: Callers parked waiting for a result that a reader (task or leader) will deliver;
        #: the runtime keeps this count (see :meth:`lead`).
        self.followers = 0
        self._leading = False  # a caller is the leader
        self._leader_waiting = False  # ... and is blocked in wait_readable
        self._on_socket = False  # the reader task is reading the socket
        self._parked: trio.lowlevel.Task | None = None  # the reader task, while it stands aside
        self._aside = False  # the reader stays off the socket until its next wake-up
        self._grace_deadline = math.inf  # the reader's wake-up set by LEADER_GRACE, not a timer
        self._last_input = -math.inf  # trio time of the latest datagram handled
        #: The trio time of the input (datagram, timer, flush) whose events ``on_event`` is
        #: being given: callbacks use it instead of reading the clock again.
        self.input_time = -math.inf
        #: The run's clock, read directly once running (trio.current_time() adds two calls).
        self._clock: Callable[[], float] = trio.current_time
        self._backlog: deque[tuple[bytes, Address]] = deque()
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._timer_scope: trio.CancelScope | None = None
        #: The deadline of ``_timer_scope``, kept here: only this driver moves it, and reading
        #: it back from the scope is a Python property call on every input and send.
        self._wake_at = math.inf
        self._last_fire = -math.inf
        self._bursting = False
        self._probe_in = BURST_PROBE_INTERVAL  # datagrams until the next look for a burst
        self._idle_wait = IdleWait(busy_poll)
        self._closed = False
        self._counts = dict.fromkeys(DriverStatistics.__dataclass_fields__, 0)
        # ACK bookkeeping after the response (Endpoint.defer_acks): for every datagram when
        # the owner answers what it receives (``respond_first``: a server), and for those a
        # caller reads itself (lead_call, lead). Deferred ACKs are applied before any wait.
        self._deferring = ack_deferral(endpoint)
        self._respond_first = respond_first and self._deferring is not None
        if self._deferring is not None:
            self._deferring.defer_acks = self._respond_first
        self._process_deferred_acks = deferred_ack_processor(self._deferring)
        #: A leader's datagram left its flush for the next wait (_on_datagram, _before_wait).
        self._flush_owed = False

    @property
    def address(self) -> Address:
        """The local address of the socket."""
        return self.socket.getsockname()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read, time and write until :meth:`aclose` (or cancellation)."""
        self._clock = trio.lowlevel.current_clock().current_time
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write_backlog)
            task_status.started()
            try:
                await self._read_loop()
            finally:
                nursery.cancel_scope.cancel()

    def send_message(
        self, addr: Address, payload: bytes, *, keep_liveness_clock: bool = False
    ) -> int:
        """Queue ``payload`` for ``addr`` and send what can go now; returns the message id.

        Raises ``ClientClosed`` after :meth:`aclose`, and whatever the endpoint raises
        (``SendBufferFull`` when the peer's send buffer is full). ``keep_liveness_clock``: see
        ``Endpoint.send_message`` (liveness probes).
        """
        if self._closed:
            raise ClientClosed("the transport is closed")
        now = self._clock()
        message_id = self.endpoint.send_message(
            addr, payload, now=now, keep_liveness_clock=keep_liveness_clock
        )
        self._flush(now)
        return message_id

    def flush(self) -> None:
        """Deliver pending events, send pending datagrams and re-arm the timer.

        Call it after using the endpoint directly (for example ``forget_peer``).
        """
        self._after_input(self._clock())

    def statistics(self) -> DriverStatistics:
        """Socket-level counters."""
        return DriverStatistics(**self._counts)

    async def aclose(self) -> None:
        """End every session (an owed ACK and a CLOSE to each peer, best effort), send what
        is pending, close the socket and stop :meth:`run`."""
        if not self._closed:
            self._closed = True
            now = self._clock()
            self.endpoint.close_all_peers(now=now)
            self._flush(now)
            self.socket.close()
            self._writer_lot.unpark_all()
            self._wake_reader()
        await trio.lowlevel.checkpoint()

    # -- callers reading the socket themselves -----------------------------------------------

    def can_lead(self) -> bool:
        """True when the calling task may :meth:`lead` now: nobody else reads the socket."""
        return self._can_lead and not (self._leading or self._on_socket or self._closed)

    async def lead(self, done: Callable[[], bool]) -> bool:
        """Read and handle input in the calling task until ``done()``; only after :meth:`can_lead`.

        Returns True once ``done()``, False when the wait was interrupted otherwise (the
        socket closed). Whoever makes ``done()`` true from another task must call
        :meth:`interrupt_leader`. A caller that cannot lead parks instead, counted in
        :attr:`followers` until it is woken, so that the driver knows someone still waits.
        """
        self._start_leading()
        try:
            while not done():
                if self._before_wait() and done():  # an ACK applied just now completed it
                    break
                self._leader_waiting = True
                try:
                    await self._wait_readable()
                except trio.ClosedResourceError:
                    return done()
                finally:
                    self._leader_waiting = False
                self._read_ready(flush=False)
            return True
        finally:
            self._leader_left()

    async def lead_call(self, call: Waiter) -> bool:
        """:meth:`lead` until ``call.wake`` is None (the runtime's pending call was woken).

        The per-call form: it checks the attribute itself (no ``done()`` call per check) and
        reads a :class:`TrioUdpSocket` directly (no ``wait_readable`` / ``try_recvfrom``
        frames). Same contract as :meth:`lead`.
        """
        udp = self._udp
        if udp is None:
            return await self.lead(partial(_woken, call))
        idle_wait, stopped = self._idle_wait.wait, self._leader_stopped
        self._start_leading()
        try:
            while call.wake is not None:
                if self._process_deferred_acks() or self._flush_owed:  # _before_wait, inlined
                    self._after_input(self._clock())
                    if _woken(call):  # an ACK applied just now was what it waited for
                        break
                self._leader_waiting = True
                try:
                    fd = udp._wait_fd
                    if fd >= 0 and not udp._closed:  # its wait_readable, inlined
                        # See _read_udp_until_cancelled for when a wait may use IdleWait.
                        if self._bursting or self.followers or not await idle_wait(fd, stopped):
                            if stopped():  # meanwhile, by another task: as trio's wait would
                                return call.wake is None
                            await trio.lowlevel.wait_readable(fd)
                    else:
                        await udp.wait_readable()
                except trio.ClosedResourceError:
                    return call.wake is None
                finally:
                    self._leader_waiting = False
                # _read_ready, inlined for the socket read directly.
                if udp._closed:
                    continue  # the wait above raises ClosedResourceError now
                try:
                    data, raw_addr = udp._sock.recvfrom(RECV_BUFSIZE)
                except BlockingIOError:  # another reader took it first
                    continue
                except OSError as exc:  # e.g. an ICMP error queued on the socket
                    self._receive_error(exc)
                    continue
                self._on_datagram(data, (raw_addr[0], raw_addr[1]), flush=False)
            return True
        finally:
            self._leader_left()

    def _leader_stopped(self) -> bool:
        """The socket closed, or interrupt_leader was called (during IdleWait's yield)."""
        udp = self._udp
        return udp is None or udp._closed or not self._leader_waiting

    def _socket_closed(self) -> bool:
        udp = self._udp
        return udp is None or udp._closed

    def interrupt_leader(self) -> None:
        """Wake the leader if it is blocked waiting for input (it then checks ``done()``)."""
        if self._leader_waiting:
            self._leader_waiting = False
            self._interrupt_wait()

    def _read_ready(self, flush: bool = True) -> None:
        try:
            item = self._try_recvfrom(RECV_BUFSIZE)
        except trio.ClosedResourceError:
            return
        except OSError as exc:  # e.g. an ICMP error queued on the socket
            self._receive_error(exc)
            return
        if item is not None:  # None: another reader took it first
            self._on_datagram(item[0], item[1], flush)

    def _start_leading(self) -> None:
        """The calling task reads the socket from now on; it defers the ACKs it reads."""
        self._leading = True
        if self._deferring is not None:
            self._deferring.defer_acks = True

    def _leader_left(self) -> None:
        """The leading task stopped reading: hand the socket back (see _start_leading)."""
        self._leading = False
        if self._deferring is not None:
            self._deferring.defer_acks = self._respond_first
        if self._closed:
            return
        if self.followers:  # they still wait: the reader reads for them from now on
            self._aside = False
            self._wake_reader()
            return
        # Nobody waits: leave the socket alone for a moment, the next call will likely lead.
        # The reader's timer usually wakes it soon enough; moving a deadline costs ~5 us.
        self._aside = True
        scope = self._timer_scope
        if scope is None:
            return
        last_input = self._last_input
        limit = last_input + LEADER_GRACE
        wake = self._wake_at
        if wake > limit:
            scope.deadline = self._wake_at = self._grace_deadline = max(limit, self._clock())
        elif wake < last_input + EARLY_WAKE_MARGIN:
            # The reader is about to wake for a timer that has since moved later (each reply
            # pushes it back): move its wake-up to the timer now, which costs less than the
            # wake-up (~5 us against ~40 us).
            timer = timer_deadline(self.endpoint.get_timer(), self._last_fire)
            if timer is not None and timer > wake:
                if timer < limit:
                    scope.deadline = self._wake_at = timer
                else:
                    scope.deadline = self._wake_at = self._grace_deadline = limit

    def _wake_reader(self) -> None:
        task = self._parked
        if task is not None:
            self._parked = None
            trio.lowlevel.reschedule(task)

    def _abort_park(self, _: object) -> trio.lowlevel.Abort:
        self._parked = None
        return trio.lowlevel.Abort.SUCCEEDED

    # -- reader and timer -----------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._closed:
            self._before_wait()
            deadline = timer_deadline(self.endpoint.get_timer(), self._last_fire)
            wake = math.inf if deadline is None else deadline
            park = self._leading or self._aside
            if park and not self._leading:  # standing aside: back within the grace
                grace = self._clock() + LEADER_GRACE
                if grace < wake:
                    wake = self._grace_deadline = grace
            with trio.CancelScope(deadline=wake) as scope:
                self._timer_scope = scope
                self._wake_at = wake
                try:
                    if park:
                        self._parked = trio.lowlevel.current_task()
                        await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                    elif self._udp is not None:  # one coroutine frame less on every wake-up
                        self._on_socket = True
                        await self._read_udp_until_cancelled(self._udp)
                    else:
                        self._on_socket = True
                        await self._read_until_cancelled()
                except trio.ClosedResourceError:
                    return
                finally:
                    self._timer_scope = None
                    self._on_socket = False
            if park:
                self._aside = False  # one wake-up ends standing aside
            if scope.cancelled_caught:
                if scope.deadline != self._grace_deadline:
                    self._fire_timer()
                elif deadline is not None and deadline <= scope.deadline:
                    self._fire_timer()  # the timer was due at the end of the grace as well

    async def _read_until_cancelled(self) -> None:
        recvfrom, on_datagram = self.socket.recvfrom, self._on_datagram
        can_lead = self._can_lead
        before_wait = self._before_wait
        while True:
            before_wait()
            try:
                data, addr = await recvfrom(RECV_BUFSIZE)
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                self._receive_error(exc)
                continue
            followers = self.followers
            on_datagram(data, addr)
            if can_lead and followers and not self.followers:
                # It woke the last waiting caller, whose next call can read for itself.
                self._aside = True
                return

    async def _read_udp_until_cancelled(self, udp: TrioUdpSocket) -> None:
        """:meth:`_read_until_cancelled` for a :class:`TrioUdpSocket`, read directly: no
        coroutine per datagram, and it waits before reading (see below)."""
        sock, on_datagram = udp._sock, self._on_datagram
        recvfrom = sock.recvfrom
        can_lead = self._can_lead
        wait_readable = trio.lowlevel.wait_readable
        process_deferred_acks = self._process_deferred_acks
        idle_wait, fd, closed = self._idle_wait.wait, sock.fileno(), self._socket_closed
        while True:
            if process_deferred_acks() or self._flush_owed:  # _before_wait, inlined
                self._after_input(self._clock())
            # Wait first: after a small datagram another is rarely waiting already, and a
            # failed non-blocking read costs an exception (~5k instructions). A burst of
            # large datagrams is drained by _on_datagram without waiting. The wait is each
            # read's cancel point (the timer fires even under a flood) and, unless a poll
            # of an idle run finds the datagram (IdleWait), its schedule point.
            if udp._closed:
                raise trio.ClosedResourceError("socket was closed")
            # With calls in flight (parked followers) or a burst under way, datagrams come
            # faster than they are handled and trio's wait lets them pile up into batches;
            # polling for them one at a time would cost more. Otherwise (a sequential peer),
            # an idle run polls the socket briefly first (IdleWait): when the datagram comes
            # in time, no trip through the run loop.
            if self._bursting or self.followers or not await idle_wait(fd, closed):
                if closed():  # meanwhile, by another task
                    raise trio.ClosedResourceError("socket was closed")
                await wait_readable(sock)  # raises ClosedResourceError if closed meanwhile
            if udp._closed:
                raise trio.ClosedResourceError("socket was closed")
            try:
                data, raw_addr = recvfrom(RECV_BUFSIZE)
            except BlockingIOError:  # woken for nothing
                continue
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                self._receive_error(exc)
                continue
            addr = (raw_addr[0], raw_addr[1])
            followers = self.followers
            on_datagram(data, addr)
            if can_lead and followers and not self.followers:
                # It woke the last waiting caller, whose next call can read for itself.
                self._aside = True
                return

    def _before_wait(self) -> bool:
        """What a leader's input left for later, done before waiting for the next one: apply
        the ACKs the endpoint deferred, take what they caused (MessageAcked events, fast
        retransmissions) and flush; True if there was anything. It runs while the leader's
        caller has what it waited for, instead of between the datagram and the caller's
        next call."""
        if self._process_deferred_acks() or self._flush_owed:
            self._after_input(self._clock())
            return True
        return False

    def _on_datagram(self, data: bytes, addr: Address, flush: bool = True) -> None:
        """Feed a datagram (and a burst after it), deliver its events and flush.

        A leader passes ``flush=False``: the flush and the deferred ACKs wait for
        _before_wait, which runs before its next wait. If the datagram completed its call,
        that is after the caller's next call, which carries the ACK owed; the reader, out
        of the way meanwhile, wakes within LEADER_GRACE to flush if no call comes first
        (_leader_left). With ``respond_first``, the response goes out before the ACKs are
        applied and the wake-up is re-armed.
        """
        self._last_input = self.input_time = now = self._clock()
        receive = self.endpoint.receive_datagram
        receive(data, addr, now=now)
        received = 1
        # Drain a burst before flushing, so that acks coalesce and a queue of small datagrams
        # (many calls in flight) costs one wake-up, not one each. A failed non-blocking read
        # costs a syscall and an exception (~3 us), so only look for more when a burst is
        # likely: after a full-size fragment, when the last look found something, or every
        # BURST_PROBE_INTERVAL datagrams (how a queue of small ones is found).
        self._probe_in -= 1
        if self._bursting or len(data) >= BURST_HINT_BYTES or self._probe_in <= 0:
            self._probe_in = BURST_PROBE_INTERVAL
            while received < self._batch:
                try:
                    item = self._try_recvfrom(RECV_BUFSIZE)
                except (OSError, trio.ClosedResourceError):
                    break
                if item is None:
                    break
                receive(item[0], item[1], now=now)
                received += 1
            self._bursting = received > 1
        self._counts["datagrams_received"] += received
        # _after_input, inlined: this runs for every datagram.
        next_event, on_event = self.endpoint.next_event, self._on_event
        while (event := next_event()) is not None:
            on_event(event)
        if not flush:
            self._flush_owed = True
        elif self._respond_first:
            self._flush(now, rearm=False)  # the response, before the ACK bookkeeping
            if self._process_deferred_acks():
                while (event := next_event()) is not None:
                    on_event(event)
            self._flush(now)
        else:
            self._flush(now)

    def _fire_timer(self) -> None:
        now = self._clock()
        self._last_fire = now
        self._counts["timer_fires"] += 1
        self.endpoint.handle_timer(now=now)
        self._after_input(now)
        if not self._leading:  # (a leader reads for itself)
            self._read_waiting()

    def _read_waiting(self) -> None:
        """Handle the datagrams already waiting (a batch at most), without waiting.

        Runs after each timer round: the next wait is cancelled at once when the timer is due
        again (a round that took longer than TIMER_GRANULARITY, a timer left in the past), so
        without this, timers alone could keep the reader from input. One timer round, then
        what is waiting: neither can starve the other.
        """
        try_recvfrom = self._try_recvfrom
        can_lead = self._can_lead
        for _ in range(self._batch):
            try:
                item = try_recvfrom(RECV_BUFSIZE)
            except trio.ClosedResourceError:
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                self._receive_error(exc)
                continue
            if item is None:
                return
            followers = self.followers
            self._on_datagram(item[0], item[1])
            if can_lead and followers and not self.followers:
                self._aside = True  # it woke the last waiting caller: let its next call lead
                return

    def _receive_error(self, exc: OSError) -> None:
        """A read failed: usually an ICMP error reported on the socket (see _handle_refusal)."""
        self._counts["receive_errors"] += 1
        if type(exc) is ConnectionRefusedError and self._on_refused is not None:
            self._refused = True
            if not self._handling_refusal:
                self._handle_refusal(self._clock())

    def _send_error(self, exc: OSError) -> None:
        """A send failed; a refusal is handled once the flush is over (see _handle_refusal)."""
        self._counts["send_errors"] += 1
        if type(exc) is ConnectionRefusedError and self._on_refused is not None:
            self._refused = True

    def _handle_refusal(self, now: float) -> None:
        """ECONNREFUSED on a connected socket: an ICMP port unreachable came back, nothing
        listens at the peer. The owner's ``on_refused`` tells the endpoint, whose events (the
        calls to that peer failing) are delivered here; Linux reports the error on whichever
        read or send comes next, so both paths lead here. Linux reports it ahead of datagrams
        already queued, so those are handled first: a server's CLOSE, sent just before it
        exited, says more about the calls than the refusal that followed it."""
        assert self._on_refused is not None
        self._handling_refusal = True
        try:
            self._read_waiting()
        finally:
            self._handling_refusal = False
        self._refused = False
        read_errors = getattr(self.socket, "read_error_queue", None)
        self._on_refused([] if read_errors is None else read_errors())
        self._after_input(now)

    def _after_input(self, now: float) -> None:
        self.input_time = now
        self._flush_owed = False  # this is the flush a leader's datagram left
        next_event, on_event = self.endpoint.next_event, self._on_event
        while (event := next_event()) is not None:
            on_event(event)
        self._flush(now)

    def _flush(self, now: float, rearm: bool = True) -> None:
        """Send what the endpoint has to send, then move the reader's wake-up to the timer.

        One function: every input and every send passes here. The wake-up moves earlier if
        the endpoint's timer moved earlier. A timer that moved later is mostly left alone:
        moving a deadline costs ~5 us (trio re-registers it), and in a request/response
        exchange the timer moves later on nearly every datagram (each ack pushes the
        retransmission timer back). Only when the reader on the socket is about to wake
        (within EARLY_WAKE_MARGIN) does its wake-up follow the timer, which costs less than
        the early wake-up it avoids (~40 us).
        """
        datagrams = self.endpoint.datagrams_to_send(now=now)
        if datagrams:
            if len(datagrams) == 1 and not self._backlog:  # _send_all's common case
                data, addr = datagrams[0]
                udp = self._udp
                try:
                    if udp is not None and not udp._closed:  # its try_sendto, inlined
                        udp._sock.sendto(data, addr)
                        self._counts["datagrams_sent"] += 1
                    elif self._try_sendto(data, addr):
                        self._counts["datagrams_sent"] += 1
                    else:
                        self._enqueue(datagrams, 0)
                except BlockingIOError:  # the socket buffer is full: the writer sends it
                    self._enqueue(datagrams, 0)
                except trio.ClosedResourceError:
                    pass
                except OSError as exc:  # unreachable network, datagram too large...: lost
                    self._send_error(exc)
            else:
                self._send_all(datagrams)
            if self._refused and not self._handling_refusal:
                self._handle_refusal(now)
        scope = self._timer_scope
        if scope is None or not rearm:
            return
        deadline = self.endpoint.get_timer()
        if deadline is not None and deadline < self._last_fire + TIMER_GRANULARITY:
            deadline = timer_deadline(deadline, self._last_fire)
        wake = self._wake_at
        if deadline is not None and deadline < wake:
            scope.deadline = self._wake_at = deadline
        elif self._on_socket and wake < now + EARLY_WAKE_MARGIN:
            later = math.inf if deadline is None else deadline
            if later > wake:
                scope.deadline = self._wake_at = later

    # -- writing --------------------------------------------------------------------------

    def _send_all(self, datagrams: list[tuple[bytes, Address]]) -> None:
        counts = self._counts
        if self._backlog:  # keep order: nothing overtakes what already waits
            self._enqueue(datagrams, 0)
            return
        try_sendto = self._try_sendto
        for index, (data, addr) in enumerate(datagrams):
            try:
                sent = try_sendto(data, addr)
            except trio.ClosedResourceError:
                return
            except OSError as exc:  # unreachable network, datagram too large: lost, as on a wire
                self._send_error(exc)
                continue
            if not sent:
                self._enqueue(datagrams, index)
                return
            counts["datagrams_sent"] += 1

    def _enqueue(self, datagrams: list[tuple[bytes, Address]], start: int) -> None:
        room = SEND_BACKLOG_LIMIT - len(self._backlog)
        waiting = datagrams[start:]
        if len(waiting) > room:
            self._counts["send_drops"] += len(waiting) - max(room, 0)
            waiting = waiting[: max(room, 0)]
        self._counts["send_waits"] += len(waiting)
        if waiting and not self._backlog:
            self._writer_lot.unpark()
        self._backlog.extend(waiting)

    async def _write_backlog(self) -> None:
        backlog, counts = self._backlog, self._counts
        while True:
            while not backlog:
                await self._writer_lot.park()
            data, addr = backlog[0]
            try:
                await self.socket.sendto(data, addr)
                counts["datagrams_sent"] += 1
            except trio.ClosedResourceError:
                backlog.clear()
                return
            except OSError as exc:
                self._send_error(exc)
            backlog.popleft()
