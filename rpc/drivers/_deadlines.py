"""Call deadlines of the async client without a cancel scope per call.

``with trio.move_on_at(deadline)`` around every wait costs a cancel scope (enter, register its
deadline with the run loop, exit): about 10 µs per call on the development machine, which is a
large share of the RPC layer's own budget, and nearly every call has a timeout. Instead, each
waiting call's deadline goes into one heap, and one task sleeps until the earliest deadline,
then wakes the calls whose time is up with :data:`EXPIRED`. A call that finishes first simply
leaves its entry behind (it is skipped when due); the heap is rebuilt when such leftovers
outnumber the live entries, so its size stays proportional to the calls in flight.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

import outcome
import trio

#: What a waiting call is woken with when its deadline passes.
EXPIRED: Any = object()
#: Leftover entries tolerated before the heap is rebuilt (on top of one per live call).
PRUNE_SLACK = 64


class DeadlineWatcher:
    """Wakes waiting calls whose deadline passed; ``still_waiting(item)`` says which wait.

    ``wake(item)`` must stop the item waiting (the client reschedules its task with
    ``EXPIRED``); it is called only for items ``still_waiting`` approves.
    """

    def __init__(self, still_waiting: Callable[[Any], bool], wake: Callable[[Any], None]) -> None:
        self._still_waiting = still_waiting
        self._wake = wake
        self._heap: list[tuple[float, int, Any]] = []
        self._order = itertools.count()  # ties: never compare the items themselves
        self._scope: trio.CancelScope | None = None
        self._live = 0  # live entries at the last prune

    def add(self, deadline: float, item: Any) -> None:
        """Watch ``item`` until ``deadline`` (the run's clock)."""
        heap = self._heap
        if len(heap) > 2 * self._live + PRUNE_SLACK:
            self._prune()
        heapq.heappush(heap, (deadline, next(self._order), item))
        scope = self._scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline  # rare for calls with equal timeouts: they queue up later

    def _prune(self) -> None:
        live = [entry for entry in self._heap if self._still_waiting(entry[2])]
        heapq.heapify(live)
        self._heap = live
        self._live = len(live)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sleep until the earliest deadline, wake what is due, repeat (until cancelled)."""
        task_status.started()
        while True:
            heap = self._heap
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                item = heapq.heappop(heap)[2]
                if self._still_waiting(item):
                    self._wake(item)


def wake_expired(task: trio.lowlevel.Task) -> None:
    """Reschedule a waiting task with :data:`EXPIRED`."""
    trio.lowlevel.reschedule(task, outcome.Value(EXPIRED))


__all__ = ["EXPIRED", "DeadlineWatcher", "wake_expired"]
