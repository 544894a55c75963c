"""The async client's deadline watcher: calls expire on time, without a cancel scope each."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import rpc
from rpc.drivers._deadlines import PRUNE_SLACK, DeadlineWatcher
from rpc.errors import CallOutcome
from tests.runtime.harness import LabImpl, sim_lab
from tests.runtime.lab_service import LabClient


async def test_a_later_call_with_an_earlier_deadline_expires_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    expired_at: dict[str, float] = {}
    async with sim_lab(LabImpl()) as (_, _server, client):
        lab = LabClient(client)
        start = trio.current_time()

        async def sleep_call(name: str, timeout: float) -> None:
            with pytest.raises(rpc.DeadlineExceeded) as info:
                await lab.sleep(60.0, timeout=timeout)
            assert info.value.outcome is CallOutcome.UNKNOWN
            expired_at[name] = trio.current_time() - start

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleep_call, "long", 5.0)
            await trio.sleep(0.1)
            nursery.start_soon(sleep_call, "short", 1.0)
    assert expired_at["short"] == pytest.approx(1.1, abs=0.01)
    assert expired_at["long"] == pytest.approx(5.0, abs=0.01)


async def test_many_calls_with_timeouts_keep_the_heap_small(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab(LabImpl()) as (_, _server, client):
        lab = LabClient(client)
        for n in range(500):
            assert await lab.bump("k", timeout=60.0) == n + 1
        watcher = client._deadlines
        assert len(watcher._heap) <= 2 * 1 + PRUNE_SLACK + 1


async def test_finished_calls_left_in_the_heap_do_not_keep_their_replies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Leftover entries wait for the next prune; each used to hold its call's reply (a 1 MiB
    # echo kept up to PRUNE_SLACK MiB alive and faulted fresh memory in on every call).
    async with sim_lab(LabImpl()) as (_, _server, client):
        lab = LabClient(client)
        for n in range(10):
            assert await lab.bump("k", timeout=60.0) == n + 1
        leftovers = [entry[2] for entry in client._deadlines._heap]
        assert len(leftovers) >= 10
        assert all(pending.result is None for pending in leftovers)


async def test_watcher_wakes_only_items_still_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    woken: list[str] = []
    waiting = {"a", "c"}
    watcher = DeadlineWatcher(waiting.__contains__, woken.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(watcher.run)
        now = trio.current_time()
        watcher.add(now + 3.0, "c")
        watcher.add(now + 1.0, "a")  # earlier than the watcher's current wake-up
        watcher.add(now + 2.0, "b")  # finished before its deadline: not woken
        await trio.sleep(1.5)
        assert woken == ["a"]
        await trio.sleep(2.0)
        assert woken == ["a", "c"]
        nursery.cancel_scope.cancel()


async def test_a_call_cancelled_at_its_deadline_is_not_woken_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # An outer cancel scope and the call's own deadline expire at the same instant: trio
    # aborts the parked call, and the deadline watcher, running in the same batch, must not
    # reschedule it again (trio asserts on that). Batches run in random order, so many calls.
    async with sim_lab(LabImpl()) as (_, _server, client):
        lab = LabClient(client)
        outcomes: list[str] = []

        async def call() -> None:
            with trio.move_on_after(1.0):
                try:
                    await lab.sleep(60.0, timeout=1.0)
                except rpc.DeadlineExceeded:
                    outcomes.append("deadline")
                    return
            outcomes.append("cancelled")

        for _ in range(20):
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(call)
        assert len(outcomes) == 200
        assert client.statistics().in_flight == 0
        assert client._driver.followers == 0
