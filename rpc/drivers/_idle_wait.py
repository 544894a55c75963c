"""Wait for a datagram in one blocking ``select`` while the trio run has nothing else to do.

A trio task that waits for its socket through trio pays for the event loop twice per datagram:
suspending (the scheduler's bookkeeping, ``epoll_ctl``) and waking (``epoll_wait`` returns,
the task is rescheduled, the next batch runs it). In a sequential exchange that wake-up lies on
the critical path of every call: about 20k instructions each side, as much as the whole
receive path of the transport core. When no other task is runnable and no other task waits for
I/O, nothing but this socket, a timer or a cross-thread wake-up can give the run work to do.
:meth:`IdleWait.wait` then blocks in ``select`` on the socket and on trio's own
wake-up socket (which every ``run_sync_soon``, thread result and Ctrl-C goes through) until the
earliest trio deadline or :data:`IDLE_WAIT_LIMIT`, whichever is sooner, and the task reads the
datagram without leaving the processor. Anything else makes it decline, and the caller waits
through trio as before: another task runnable or waiting for I/O, a deadline due, a task
waiting for the run to be idle (``MockClock``'s autojump), trio's guest mode, an I/O backend
other than epoll, or trio internals that are not what this module knows. It yields to the run
loop before blocking at least every :data:`IDLE_YIELD_INTERVAL`, for the tasks the idle check
cannot see (see :meth:`IdleWait.wait`).

Before it blocks it may busy-poll the two sockets, for as long as its :class:`BusyPoll`
allows (see ``rpc/drivers/_busy_poll.py``): a sequential peer nearby answers sooner than a sleeping
process is woken.

This reads trio's private run state (the run queue, the epoll registrations, the deadline heap,
the autojump threshold and the entry queue's wake-up socket). Every access is checked once per
run and the module falls back to the ordinary path if any is missing;
``tests/drivers/test_idle_wait.py`` pins the behaviour on the trio version installed.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable
from typing import Any

import trio

from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, BusyPoll

#: Longest blocking wait (seconds). It bounds how late the run notices anything select does not
#: watch; a loopback or LAN reply takes well under this, and a slower one is then waited for
#: through trio. A deadline due sooner shortens it.
IDLE_WAIT_LIMIT = 0.002
#: A blocking wait yields to the run loop first if it has not for this long (seconds): tasks
#: the run loop has already taken for its current batch are not in the run queue, so the
#: idle check cannot see them, and they wait until the task yields. A yield costs a trip
#: through the run loop (~20 us), too much to pay before every wait of a sequential caller.
IDLE_YIELD_INTERVAL = 0.001


def _run_context() -> Any:
    """trio's per-thread run context (private), or None if this trio has none by that name."""
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT
    except ImportError:  # pragma: no cover - depends on the trio version
        return None
    return GLOBAL_RUN_CONTEXT


#: Where trio keeps the current run's ``runner`` (``None``: this module always declines).
_RUN_CONTEXT: Any = _run_context()


class IdleWait:
    """Waits for one socket on behalf of a trio run, blocking in ``select`` when it is idle."""

    def __init__(self, busy_poll: float = DEFAULT_BUSY_POLL) -> None:
        #: Whether a blocking wait polls first, and for how long (``busy_poll`` seconds).
        self.busy_poll = BusyPoll(busy_poll)
        self._runner: Any = None  # the run the attributes below belong to
        self._runq: Any = None
        self._registered: Any = None
        self._deadlines: Any = None
        self._clock: Any = None
        self._waiting_for_idle: Any = None
        self._wakeup_fd = -1
        self._usable = False
        self._yielded_at = -math.inf  # time.perf_counter() of the last yield before a wait

    def _bind(self, runner: Any) -> None:
        """Look up, once per run, the run state :meth:`idle_timeout` reads."""
        self._runner = runner
        self._usable = False
        self._yielded_at = -math.inf
        try:
            runq = runner.runq
            io_manager = runner.io_manager
            registered = io_manager._registered
            deadlines = runner.deadlines
            clock = runner.clock
            waiting_for_idle = runner.waiting_for_idle
            runner.clock_autojump_threshold  # noqa: B018  (present: read on every wait)
            guest = runner.is_guest
            wakeup_fd = runner.entry_queue.wakeup.wakeup_sock.fileno()
            deadlines.next_deadline  # noqa: B018  (present: checked here, called later)
        except AttributeError:
            return
        if (
            guest  # blocking would block the host's event loop
            or type(io_manager).__name__ != "EpollIOManager"
            or not isinstance(registered, dict)
        ):
            return
        self._runq, self._registered, self._deadlines = runq, registered, deadlines
        self._clock, self._waiting_for_idle, self._wakeup_fd = clock, waiting_for_idle, wakeup_fd
        self._usable = True

    def idle_timeout(self) -> float:
        """How long the calling task may block the run (seconds); 0.0 when it may not.

        Positive only when no other task is runnable or waits for I/O (trio's wake-up socket
        aside, which the blocking wait watches too): until the earliest deadline, at most
        :data:`IDLE_WAIT_LIMIT`.
        """
        runner: Any = getattr(_RUN_CONTEXT, "runner", None)
        if runner is not self._runner:
            self._bind(runner)
        if (
            not self._usable
            or self._runq
            or self._waiting_for_idle
            or runner.clock_autojump_threshold != math.inf
        ):
            return 0.0  # a task to run, or one waiting for the run to be idle (MockClock's
            # autojump, wait_all_tasks_blocked): only trio's own wait may see it idle
        registered = self._registered
        if registered and (len(registered) > 1 or self._wakeup_fd not in registered):
            return 0.0  # another task waits for I/O: trio must watch it
        # Real seconds until the earliest deadline, as the run loop computes its own wait.
        timeout: float = self._clock.deadline_to_sleep_time(self._deadlines.next_deadline())
        return min(timeout, IDLE_WAIT_LIMIT) if timeout > 0.0 else 0.0

    async def wait(self, fd: int, stopped: Callable[[], bool]) -> bool:
        """Wait for ``fd`` to be readable in ``select`` if the run is idle; True if it is.

        False means the caller must wait through trio (``trio.lowlevel.wait_readable``)
        after checking ``stopped()``: the run is busy, the wait timed out, trio's wake-up
        socket became readable, or ``stopped()`` became true during the yield (the caller's
        socket was closed, or its wait interrupted, by another task).

        A cancel point whenever it may block, and a schedule point at least every
        :data:`IDLE_YIELD_INTERVAL`: tasks already taken from the run queue for the run
        loop's current batch are invisible to :meth:`idle_timeout`, and would otherwise wait
        behind every blocking wait for as long as datagrams keep coming. So a task made
        runnable waits at most about that interval plus one wait. After a yield the run is
        checked again, and ``stopped()`` too: another task may have closed the socket (its
        descriptor number may then be reused) or interrupted the wait.
        """
        if self.idle_timeout() <= 0.0:
            return False
        now = time.perf_counter()
        if now - self._yielded_at < IDLE_YIELD_INTERVAL:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            self._yielded_at = now
            await trio.lowlevel.checkpoint()  # raises a pending cancellation, lets others run
            await trio.lowlevel.checkpoint_if_cancelled()  # ... and one that came meanwhile
            if stopped():
                return False
        timeout = self.idle_timeout()
        if timeout <= 0.0:
            return False
        fds = (fd, self._wakeup_fd)
        busy_poll = self.busy_poll
        try:
            if busy_poll.worthwhile():
                start = time.perf_counter()
                readable = busy_poll.poll(timeout, _readable_now, fds)
                if not readable:
                    remaining = timeout - (time.perf_counter() - start)
                    readable = select.select(fds, (), (), max(remaining, 0.0))[0]
            else:
                readable = select.select(fds, (), (), timeout)[0]
        except (OSError, ValueError):  # a closed descriptor: the caller's wait reports it
            return False
        return readable == [fd]


def _readable_now(fds: tuple[int, int]) -> list[int]:
    """The descriptors of ``fds`` readable right now (``select`` without waiting)."""
    readable: list[int] = select.select(fds, (), (), 0)[0]
    return readable
