"""A pool of long-lived worker tasks that run handler calls, so a call costs no task spawn.

Spawning a trio task per call costs a coroutine, a task object and a context copy; on this
machine class that is roughly as much as the whole RPC layer's own work. Idle workers instead
park with ``wait_task_rescheduled`` and are handed their next item with one ``reschedule``. A
worker that finishes an item asks for the next queued one before parking, so a busy server
runs queued calls with no hop at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import outcome
import trio

T = TypeVar("T")


class WorkerPool(Generic[T]):
    """Up to ``max_workers`` tasks in ``nursery`` running ``run(item)``.

    ``next_item()`` is asked for more work whenever a worker becomes free; it returns ``None``
    when there is none (the worker then parks).
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        run: Callable[[T], Awaitable[None]],
        next_item: Callable[[], T | None],
        max_workers: int,
    ) -> None:
        self._nursery = nursery
        self._run = run
        self._next_item = next_item
        self._max_workers = max_workers
        self._workers = 0
        self._idle: list[trio.lowlevel.Task] = []

    @property
    def workers(self) -> int:
        """Worker tasks alive (busy or idle)."""
        return self._workers

    def submit(self, item: T) -> bool:
        """Hand ``item`` to an idle or new worker; False when every worker is busy."""
        if self._idle:
            trio.lowlevel.reschedule(self._idle.pop(), outcome.Value(item))
            return True
        if self._workers < self._max_workers:
            self._workers += 1
            self._nursery.start_soon(self._worker, item)
            return True
        return False

    async def _worker(self, item: T) -> None:
        try:
            while True:
                await self._run(item)
                following = self._next_item()
                item = following if following is not None else await self._park()
        finally:
            self._workers -= 1

    async def _park(self) -> T:
        task = trio.lowlevel.current_task()
        self._idle.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._idle.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        item: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return item
