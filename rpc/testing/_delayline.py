"""A delay line on trio: items released at their due times by one sleeping task.

Used by the simulated network and the chaos proxy to deliver delayed datagrams. The task sleeps
in a cancel scope whose deadline is the earliest due time; pushing an earlier item just moves
that deadline, so there is no polling and no wakeup per item.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Generic, NoReturn, TypeVar

import trio

T = TypeVar("T")


class DelayLine(Generic[T]):
    """Calls ``release(item)`` for each pushed item once trio's clock reaches its due time.

    Items due at the same time come out in the order they were pushed. :meth:`run` must be
    running (in a nursery or as a system task) for anything to come out.
    """

    def __init__(self, release: Callable[[T], None]) -> None:
        self._release = release
        self._heap: list[tuple[float, int, T]] = []
        self._order = 0
        self._wakeup: trio.CancelScope | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, when: float, item: T) -> None:
        """Release ``item`` at trio time ``when``."""
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, item))
        wakeup = self._wakeup
        if wakeup is not None and when < wakeup.deadline:
            wakeup.deadline = when

    def clear(self) -> None:
        """Forget every pending item."""
        self._heap.clear()

    async def run(self) -> NoReturn:
        """Sleep until the earliest due time, release what is due, repeat; forever."""
        heap = self._heap
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._wakeup = scope
                await trio.sleep_forever()
            self._wakeup = None
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                self._release(heapq.heappop(heap)[2])
