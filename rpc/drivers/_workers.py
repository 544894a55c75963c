"""A pool of long-lived worker tasks that run handler calls, so a call costs no task spawn.

Spawning a trio task per call costs a coroutine, a task object and a context copy, and entering
a fresh cancel scope per call costs about as much again; on this machine class together they
were a large part of the RPC layer's own work. Instead, idle workers park with
``wait_task_rescheduled`` and are handed their next item with one ``reschedule``; a worker that
finishes an item asks for the next queued one before parking, so a busy server runs queued calls
with no hop at all. Each worker runs its items inside one long-lived cancel scope, which ``run``
may arm with a deadline or cancel for the item it is running; a scope that was cancelled is
spent, so the worker continues under a fresh one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import outcome
import trio

T = TypeVar("T")


class WorkerPool(Generic[T]):
    """Up to ``max_workers`` tasks in ``nursery`` running ``run(item, scope)``.

    ``next_item()`` is asked for more work whenever a worker becomes free; it returns ``None``
    when there is none (the worker then parks). ``scope`` is the worker's current cancel scope:
    ``run`` may set its deadline or cancel it; it returns True when it cancelled the scope (or
    its deadline passed), and must leave its deadline at infinity when it returns False.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        run: Callable[[T, trio.CancelScope], Awaitable[bool]],
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
        run, next_item, park = self._run, self._next_item, self._park
        try:
            while True:
                with trio.CancelScope() as scope:
                    while True:
                        if await run(item, scope):
                            break
                        following = next_item()
                        item = following if following is not None else await park()
                # The item before was cancelled through this scope: it is spent.
                following = next_item()
                item = following if following is not None else await park()
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
