"""Running admitted calls on asyncio: the trio executor's rules (``rpc._execution``: the
concurrency limit, the bounded FIFO queue, inline handlers, replies and cache entries), with
asyncio tasks as workers, ``asyncio.timeout`` for the caller's deadline and ``Task.cancel`` for
a CANCEL, a client restart or the end of a shutdown's grace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rpc._execution import AdmittedCall, Executor
from rpc.calls.callproto import Status
from rpc.context import _CURRENT


class _TaskPool:
    """Up to ``max_workers`` tasks, each running calls until the queue is empty."""

    def __init__(
        self,
        run: Callable[[AdmittedCall], Awaitable[None]],
        next_item: Callable[[], AdmittedCall | None],
        max_workers: int,
    ) -> None:
        self._run = run
        self._next_item = next_item
        self._max_workers = max_workers
        self._workers = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references: tasks are weak

    def submit(self, item: AdmittedCall) -> bool:
        """Start a worker for ``item``; False when every worker is busy."""
        if self._workers >= self._max_workers:
            return False
        self._workers += 1
        task = asyncio.get_running_loop().create_task(self._worker(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _worker(self, item: AdmittedCall) -> None:
        try:
            following: AdmittedCall | None = item
            while following is not None:
                await self._run(following)
                following = self._next_item()
        finally:
            self._workers -= 1

    def cancel_all(self) -> None:
        """Cancel every worker (the server is being torn down)."""
        for task in list(self._tasks):
            task.cancel()


class AsyncioExecutor(Executor):
    """:class:`rpc._execution.Executor` on asyncio; ``start()`` inside the running loop."""

    def start(self, nursery: Any = None) -> None:
        """Start running calls (in the running loop; ``nursery`` is trio's and unused)."""
        self._tasks = _TaskPool(self._run_in_task, self._next_queued, self._max_concurrent)
        self._pool = self._tasks
        self._clock = time.monotonic  # the asyncio driver's clock: deadlines are on it

    def stop(self) -> None:
        """Cancel every worker."""
        self._tasks.cancel_all()

    async def _run_in_task(self, call: AdmittedCall) -> None:
        """Run one call's handler in this worker task; send its reply."""
        ident = call.key, call.call_no
        deadline = call.deadline
        started = self._clock()
        if call.cancelled or (deadline is not None and deadline <= started):
            self._not_started(call, ident, started)
            return
        call.scope = asyncio.current_task()
        _CURRENT.set(call)  # this worker task serves this call now
        plan, call_no = call.plan, call.call_no
        status, reply, returned = Status.OK, b"", False
        try:
            async with asyncio.timeout(None if deadline is None else deadline - started):
                try:
                    result = await plan.fn(*call.args)
                except Exception as exc:  # cancellation and expiry are BaseException here
                    status, reply = plan.error_reply(call_no, exc)
                else:
                    status, reply = plan.result_reply(call_no, result)
                returned = True
        except TimeoutError:  # the deadline passed: nobody wants a reply
            pass
        except asyncio.CancelledError:
            if not call.cancelled:
                raise  # the worker itself is cancelled: the server is torn down
            # mypy keeps call.cancelled narrowed to False from the check before the run.
            task = asyncio.current_task()  # type: ignore[unreachable]
            if task is not None:  # this cancel was for the call: the worker goes on
                task.uncancel()
        finally:
            call.scope = None
            now = self._clock()
            self.handler_seconds += now - started
            if returned and not call.cancelled:
                self._returned(call, ident, status, reply, now)
            elif ident in self._running:
                self._failed["CANCELLED" if call.cancelled else "DEADLINE"] += 1
                self._finish(call, ident, None, now)


__all__ = ["AsyncioExecutor"]
