"""Adaptive busy-polling before a blocking wait for a datagram (:class:`BusyPoll`).

A process that blocks waiting for a reply pays for going to sleep and for being woken: the
kernel reschedules, and on a virtual machine the idle processor exits to the hypervisor and
is brought back by an interrupt. On loopback, where a sequential peer answers within tens of
microseconds, that is about a fifth of each round trip (measured in ``docs/performance.md``).
Polling the socket for a short while first avoids it whenever the datagram comes in time, at
the price of processor time while it polls.

Polling pays only when the datagram comes within the budget, so the decision adapts, like an
adaptive mutex's spinning: a task keeps polling while at least half of its recent polls found
a datagram in time. A remote or idle peer, or a peer that shares this processor and is held
up by the polling, makes polls miss; the task then blocks at once, and polls again only
every :data:`PROBE_INTERVAL` waits, to notice when the peer is fast again. How long a blocked
wait lasted cannot tell: it includes the very wake-up that polling avoids.
Linux offers the same trade for network devices with busy-polling queues (``SO_BUSY_POLL``),
but not for loopback, so the drivers poll themselves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from rpc.errors import InvalidArgument

T = TypeVar("T")

#: Default polling budget (seconds). On loopback the reply to a small call, or a sequential
#: peer's next call, comes within 30-60 us; a wait longer than this is rarely shortened by
#: polling, and the polling would cost more processor time than the wake-up it saves.
DEFAULT_BUSY_POLL = 100e-6
#: Weight of the newest poll in the moving hit rate.
_NEWEST_WEIGHT = 1 / 8
#: Polling goes on while at least this share of recent polls found a datagram in time: the
#: processor time spent on misses stays within one budget per wake-up saved.
HIT_RATE_TO_POLL = 0.5
#: After polling stopped, every this-many-th wait polls anyway: on a peer that stays far, one
#: budget per this many waits, which are longer than the budget.
PROBE_INTERVAL = 16


def check_busy_poll(budget: float) -> float:
    """``budget`` if it is a valid polling budget in seconds (0 disables polling)."""
    number = isinstance(budget, (int, float)) and not isinstance(budget, bool)
    if not (number and 0 <= budget < math.inf):
        raise InvalidArgument(f"busy_poll must be a number of seconds >= 0, not {budget!r}")
    return float(budget)


class BusyPoll:
    """Whether a wait for a datagram should poll before it blocks, learnt from recent polls.

    A driver asks :meth:`worthwhile` before it waits; if so, :meth:`poll` polls for at most
    :attr:`budget` and records whether it found a datagram (:meth:`record`).
    """

    __slots__ = ("_until_probe", "budget", "hit_rate")

    def __init__(self, budget: float = DEFAULT_BUSY_POLL) -> None:
        #: Longest poll before blocking (seconds); 0 never polls.
        self.budget = check_busy_poll(budget)
        #: Moving share of recent polls that found a datagram in time. It starts at 1, so
        #: that the first waits poll: a new peer is as likely to be near as far.
        self.hit_rate = 1.0
        self._until_probe = PROBE_INTERVAL

    def worthwhile(self) -> bool:
        """True if the next wait should poll first (count each wait: it may be a probe)."""
        if self.hit_rate >= HIT_RATE_TO_POLL:
            return self.budget > 0.0
        self._until_probe -= 1
        if self._until_probe > 0:
            return False
        self._until_probe = PROBE_INTERVAL
        return self.budget > 0.0

    def poll(self, limit: float, ready: Callable[..., T], *args: object) -> T:
        """Call ``ready(*args)`` until it returns something true or the budget (at most
        ``limit`` seconds) is spent; return its last result, counted as a hit or a miss."""
        now = time.perf_counter
        until = now() + min(self.budget, limit)
        while True:
            result = ready(*args)
            if result or now() >= until:
                self.record(bool(result))
                return result

    def record(self, hit: bool) -> None:
        """Take a poll into account: ``hit`` if it found a datagram within the budget."""
        self.hit_rate += (hit - self.hit_rate) * _NEWEST_WEIGHT
