"""Spin on a socket, briefly, while the trio run has nothing else to do (:class:`IdleWait`).

A trio task that waits for its socket through trio pays for the event loop twice per datagram:
suspending (the scheduler's bookkeeping, ``epoll_ctl``) and waking (``epoll_wait`` returns,
the task is rescheduled, the next batch runs it); and when the process has nothing else to do,
the kernel puts it to sleep and wakes it, which on a virtual machine costs an exit to the
hypervisor each way. A sequential peer nearby answers within tens of microseconds, sooner than
that round of sleeping and waking. So before such a wait, while no other task is runnable, no
cross-thread callback is queued and no trio deadline is due, :meth:`IdleWait.wait` polls the
socket without blocking (``poll`` or ``select`` with a zero timeout) for at most the budget of
its :class:`BusyPoll` (see ``rpc/drivers/_busy_poll.py``, which also decides, from recent
polls, whether polling pays), and the task reads the datagram without leaving the processor.
If nothing comes in time the caller waits through trio (``trio.lowlevel.wait_readable``), as
it would without this module.

It reads only trio's public run statistics (``trio.lowlevel.current_statistics``:
``tasks_runnable``, ``seconds_to_next_deadline``, ``run_sync_soon_queue_size``), so a trio
release, another I/O backend (kqueue, Windows), guest mode or a descriptor above 1023 changes
neither what it does nor how fast. No task can become runnable and no deadline can be added
while it spins (the run is single-threaded), so one look before each spin bounds it by the
earliest deadline; other threads and signal handlers can only queue callbacks for the run
loop, which the spin looks for every :data:`RUN_CHECK_INTERVAL` polls and stops for. What
else a spin delays (a datagram for another task, a task of the run loop's current batch,
which the statistics do not count) waits for the spin to end, and since a task whose polls
keep finding datagrams may never reach a schedule point, it yields to the run loop
(``trio.lowlevel.checkpoint``) before a spin at least every :data:`IDLE_YIELD_INTERVAL`:
such work waits at most about that interval plus one budget.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable

import trio

from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, BusyPoll

#: A spin yields to the run loop first if its task has not for this long (seconds): tasks the
#: run loop has already taken for its current batch, and tasks whose I/O is ready, run only
#: when it does. A yield costs a trip through the run loop (~20 us), too much to pay before
#: every wait of a sequential caller.
IDLE_YIELD_INTERVAL = 0.001

#: ``poll`` events that end a spin with the socket ready to read: a datagram, or an error
#: (e.g. ICMP port unreachable) that the read reports. ``POLLNVAL`` (a closed descriptor)
#: ends it too, but as not readable: the caller's wait through trio reports the closing.
_READY = select.POLLIN | select.POLLERR | select.POLLHUP if hasattr(select, "poll") else 0
#: Every this-many-th empty poll of a spin also looks whether another thread (or a signal
#: handler) queued a callback for the run: a look costs about three polls, so a tenth of a
#: spin goes to looking, and a callback waits about 20 us at most.
RUN_CHECK_INTERVAL = 32
#: What :meth:`IdleWait._poll_once` found: a datagram (or error) to read, or a reason to stop.
_READABLE = 1
_STOP = 2


class IdleWait:
    """Polls one socket for a while before a trio task waits for it, when the run is idle."""

    __slots__ = ("_polled_fd", "_poller", "_polls", "_yielded_at", "busy_poll")

    def __init__(self, busy_poll: float = DEFAULT_BUSY_POLL) -> None:
        #: Whether a wait polls first, and for how long (``busy_poll`` seconds; 0 never polls).
        self.busy_poll = BusyPoll(busy_poll)
        self._poller = select.poll() if hasattr(select, "poll") else None
        self._polled_fd = -1  # the descriptor registered with _poller
        self._polls = 0  # empty polls in the current spin
        self._yielded_at = -math.inf  # time.perf_counter() of the last yield before a spin

    def spin_limit(self) -> float:
        """How long the calling task may spin now (seconds); 0.0 when it may not.

        Positive only when no other task is runnable, no callback from another thread is
        queued and no deadline is due: the time to the earliest deadline, at most the budget.
        """
        stats = trio.lowlevel.current_statistics()
        if stats.tasks_runnable or stats.run_sync_soon_queue_size:
            return 0.0
        limit = min(stats.seconds_to_next_deadline, self.busy_poll.budget)
        return limit if limit > 0.0 else 0.0

    async def wait(self, fd: int, stopped: Callable[[], bool]) -> bool:
        """Poll ``fd`` until it is readable, while the run is idle; True if it is.

        False means the caller must wait through trio (``trio.lowlevel.wait_readable``) after
        checking ``stopped()``: polling is off or has not paid lately, the run has other
        work, nothing came within the budget, the descriptor is closed, or ``stopped()``
        became true during the yield (the caller's socket was closed, or its wait
        interrupted, by another task).

        A cancel point whenever it polls, and a schedule point at least every
        :data:`IDLE_YIELD_INTERVAL`; after such a yield the run is looked at again, and
        ``stopped()`` too (the socket may have been closed and its number reused).
        """
        busy_poll = self.busy_poll
        if busy_poll.budget <= 0.0:
            return False  # without asking trio: busy_poll=0 costs nothing
        limit = self.spin_limit()
        if limit <= 0.0 or not busy_poll.worthwhile():
            return False
        now = time.perf_counter()
        if now - self._yielded_at < IDLE_YIELD_INTERVAL:
            await trio.lowlevel.checkpoint_if_cancelled()  # never switches: limit still holds
        else:
            self._yielded_at = now
            await trio.lowlevel.checkpoint()  # raises a pending cancellation, lets others run
            await trio.lowlevel.checkpoint_if_cancelled()  # ... and one that came meanwhile
            if stopped():
                return False
            limit = self.spin_limit()
            if limit <= 0.0:
                return False
        try:
            if self._poller is not None and fd != self._polled_fd:
                if self._polled_fd >= 0:
                    self._poller.unregister(self._polled_fd)
                    self._polled_fd = -1
                self._poller.register(fd, select.POLLIN)
                self._polled_fd = fd
            self._polls = 0
            return busy_poll.poll(limit, self._poll_once, fd) == _READABLE
        except (OSError, ValueError):  # a closed descriptor: the caller's wait reports it
            return False

    def _poll_once(self, fd: int) -> int:
        """Whether ``fd`` is readable right now (:data:`_READABLE`), not yet (0), or the spin
        must stop (:data:`_STOP`: a closed descriptor, or a callback from another thread, a
        signal's included, queued for the run; BusyPoll counts it as a hit)."""
        poller = self._poller
        if poller is None:  # no poll(2) (Windows), where select has no descriptor limit
            if select.select((fd,), (), (), 0)[0]:
                return _READABLE
        else:
            events = poller.poll(0)
            if events:
                return _READABLE if events[0][1] & _READY else _STOP
        self._polls += 1
        if (
            self._polls % RUN_CHECK_INTERVAL == 0
            and trio.lowlevel.current_statistics().run_sync_soon_queue_size
        ):
            return _STOP
        return 0
