"""Handlers that never suspend run inline in the receiving task, without a worker hop."""

from __future__ import annotations

import trio
import trio.testing

import rpc
from rpc._dispatch import never_suspends
from tests.runtime.harness import LabImpl, sim_lab
from tests.runtime.lab_service import LabClient


class Shapes:
    """Handler bodies of every kind the check must tell apart."""

    async def plain(self, x: int) -> int:
        return x + 1

    async def scoped(self) -> int:
        with trio.move_on_after(1.0):
            return 2
        return 3

    async def awaits(self) -> None:
        await trio.sleep(0)

    async def async_with(self) -> None:
        async with trio.open_nursery():
            pass

    async def async_for(self, source: trio.MemoryReceiveChannel[int]) -> list[int]:
        return [x async for x in source]

    def not_async(self) -> int:
        return 1


def test_only_bodies_without_await_never_suspend() -> None:
    shapes = Shapes()
    judged = {
        name: never_suspends(getattr(shapes, name))
        for name in ("plain", "scoped", "awaits", "async_with", "async_for", "not_async")
    }
    assert judged == {
        "plain": True, "scoped": True, "awaits": False, "async_with": False,
        "async_for": False, "not_async": False,
    }


async def test_non_suspending_handlers_need_no_worker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab(LabImpl()) as (_, server, client):
        lab = LabClient(client)
        for n in range(5):
            assert await lab.bump("k", timeout=5.0) == n + 1  # bump never awaits
        assert "#" in await lab.whoami()  # rpc.current_call() works inline too
        inline_workers = server._calls._pool.workers if server._calls._pool else -1
        await lab.blocking_sum([1, 2])  # awaits a thread: runs in a worker
        worker_workers = server._calls._pool.workers if server._calls._pool else -1
    assert (inline_workers, worker_workers) == (0, 1)
    assert rpc.current_call() is None  # nothing leaked into this task's context
    assert server.statistics().calls_completed == 7
