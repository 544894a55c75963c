"""IdleWait: a short spin on the socket only while the trio run has nothing else to do.

Real sockets and the real clock: what is tested is how the spin meets trio's scheduler.
"""

from __future__ import annotations

import socket
import sys
import time

import pytest
import trio
import trio.testing

from rpc.drivers._busy_poll import PROBE_INTERVAL
from rpc.drivers._idle_wait import IdleWait


@pytest.fixture
def trio_waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors waited for through trio's own ``wait_readable`` (after no spin hit)."""
    waited: list[int] = []
    real = trio.lowlevel.wait_readable

    async def counting(fd: int) -> None:
        waited.append(fd)
        await real(fd)

    monkeypatch.setattr(trio.lowlevel, "wait_readable", counting)
    return waited


async def _wait(idle: IdleWait, fd: int) -> None:
    """How the drivers use it: the spin, else trio's wait."""
    if not await idle.wait(fd, _never_stopped):
        await trio.lowlevel.wait_readable(fd)


def _never_stopped() -> bool:
    return False


def _idle_wait_once(idle: IdleWait, fd: int) -> tuple[bool, float]:
    """One wait in an otherwise idle run: whether the spin found ``fd`` readable, and how
    long it took (seconds)."""

    async def main() -> tuple[bool, float]:
        await trio.testing.wait_all_tasks_blocked()  # trio's own tasks start runnable
        start = time.perf_counter()
        found = await idle.wait(fd, _never_stopped)
        return found, time.perf_counter() - start

    return trio.run(main)


def test_a_datagram_that_comes_during_the_spin_is_read_without_trio(
    pair: tuple[socket.socket, ...], trio_waits: list[int]
) -> None:
    a, b = pair
    idle = IdleWait(busy_poll=2.0)  # the datagram comes after 50 ms: well within the budget

    async def main() -> tuple[bool, float]:
        async with trio.open_nursery() as nursery:
            # A thread sends it: no other task runs meanwhile.
            nursery.start_soon(trio.to_thread.run_sync, _send_later, a, b.getsockname())
            await trio.testing.wait_all_tasks_blocked()
            start = time.perf_counter()
            found = await idle.wait(b.fileno(), _never_stopped)
            return found, time.perf_counter() - start
        raise AssertionError("unreachable")

    found, took = trio.run(main)
    assert found
    assert 0.04 < took < 1.0  # it spun until the datagram came, not for the whole budget
    assert b.recv(16) == b"x"
    assert trio_waits == []
    assert idle.busy_poll.hit_rate == 1.0


def _send_later(a: socket.socket, addr: tuple[str, int]) -> None:
    time.sleep(0.05)
    a.sendto(b"x", addr)
    time.sleep(0.1)  # the thread's result (which also ends a spin) comes well after


def test_a_waiting_datagram_is_found_by_the_first_poll(pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    a.sendto(b"x", b.getsockname())
    idle = IdleWait(busy_poll=2.0)
    found, took = _idle_wait_once(idle, b.fileno())
    assert found
    assert took < 0.5
    assert idle.busy_poll.hit_rate == 1.0


def test_the_spin_stops_at_its_budget_and_counts_a_miss(
    pair: tuple[socket.socket, ...],
) -> None:
    _, b = pair
    idle = IdleWait(busy_poll=0.05)
    found, took = _idle_wait_once(idle, b.fileno())  # nothing comes
    assert not found
    assert 0.05 <= took < 0.5
    assert idle.busy_poll.hit_rate < 1.0


def test_a_zero_budget_never_polls(pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    a.sendto(b"x", b.getsockname())  # a poll would find it at once
    idle = IdleWait(busy_poll=0)

    async def main() -> list[bool]:
        await trio.testing.wait_all_tasks_blocked()
        return [await idle.wait(b.fileno(), _never_stopped) for _ in range(3 * PROBE_INTERVAL)]

    assert not any(trio.run(main))


def test_polling_stops_once_polls_keep_missing_and_a_probe_brings_it_back(
    pair: tuple[socket.socket, ...],
) -> None:
    a, b = pair
    idle = IdleWait(busy_poll=0.0002)
    for _ in range(6):  # six misses: a far peer
        assert not _idle_wait_once(idle, b.fileno())[0]
    a.sendto(b"x", b.getsockname())  # a poll would find it at once: none is made ...
    skipped = 0
    while not _idle_wait_once(idle, b.fileno())[0]:
        skipped += 1
        assert skipped < PROBE_INTERVAL, "no probe came"
    assert skipped == PROBE_INTERVAL - 1  # ... until the probe


def test_it_does_not_spin_while_another_task_is_runnable(
    pair: tuple[socket.socket, ...],
) -> None:
    a, b = pair
    a.sendto(b"x", b.getsockname())  # a poll would find it at once
    idle = IdleWait()

    async def main() -> tuple[bool, bool]:
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0)  # runnable: the run is not idle
            busy = await idle.wait(b.fileno(), _never_stopped)
        await trio.testing.wait_all_tasks_blocked()
        alone = await idle.wait(b.fileno(), _never_stopped)
        return busy, alone

    assert trio.run(main) == (False, True)


def test_a_deadline_bounds_the_spin_and_its_task_runs_on_time(
    pair: tuple[socket.socket, ...],
) -> None:
    _, b = pair
    idle = IdleWait(busy_poll=5.0)  # nothing comes: only the deadline can end the spin early
    late = -1.0

    async def sleeper() -> None:
        nonlocal late
        target = trio.current_time() + 0.05
        await trio.sleep_until(target)
        late = trio.current_time() - target

    async def main() -> tuple[bool, float]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await trio.testing.wait_all_tasks_blocked()
            start = time.perf_counter()
            found = await idle.wait(b.fileno(), _never_stopped)
            return found, time.perf_counter() - start
        raise AssertionError("unreachable")

    found, took = trio.run(main)
    assert not found
    assert took < 1.0
    assert 0.0 <= late < 0.5


def test_the_spin_limit_is_the_time_to_the_next_deadline() -> None:
    idle = IdleWait(busy_poll=60.0)

    async def main() -> tuple[float, float, float]:
        await trio.testing.wait_all_tasks_blocked()  # trio's own tasks start runnable
        alone = idle.spin_limit()
        with trio.move_on_after(10.0):
            near = idle.spin_limit()
        with trio.move_on_after(0.01):
            time.sleep(0.02)  # blocking: the deadline passes before the run loop sees it
            due = idle.spin_limit()  # ... and no spin may wait past it
        return alone, near, due

    alone, near, due = trio.run(main)
    assert alone == 60.0
    assert 5.0 < near <= 10.0
    assert due == 0.0


def test_a_callback_from_another_thread_ends_the_spin(pair: tuple[socket.socket, ...]) -> None:
    # Nothing arrives on the socket and the spin may last 5 s: the thread's result must still
    # reach the run at once (else fail_after's 3 s deadline ends the spin and the test).
    _, b = pair
    idle = IdleWait(busy_poll=5.0)

    async def main() -> tuple[str, float]:
        start = time.perf_counter()
        with trio.fail_after(3):
            async with trio.open_nursery() as nursery:

                async def wait_forever() -> None:
                    await trio.testing.wait_all_tasks_blocked()  # main waits for its thread
                    while True:  # the run is idle now: this spins
                        await _wait(idle, b.fileno())

                nursery.start_soon(wait_forever)
                result = await trio.to_thread.run_sync(_after_a_while)
                nursery.cancel_scope.cancel()
        return result, time.perf_counter() - start

    result, took = trio.run(main)
    assert result == "from the thread"
    assert took < 1.5


def _after_a_while() -> str:
    time.sleep(0.2)  # in the thread: the waiting task spins by then
    return "from the thread"


def test_a_task_scheduled_in_the_same_batch_is_not_starved(
    pair: tuple[socket.socket, ...],
) -> None:
    # The run statistics do not count tasks already taken for the run loop's current batch:
    # a waiter that never yielded would keep them waiting while its datagrams keep coming.
    a, b = pair

    async def main() -> int:
        idle = IdleWait()  # one per driver, in one run: its first spin yields
        for _ in range(50):
            a.sendto(b"x", b.getsockname())
        waits = 0
        other_ran_after = -1

        async def reader() -> None:
            nonlocal waits
            for _ in range(50):
                await _wait(idle, b.fileno())
                b.recv(16)
                waits += 1

        async def other() -> None:
            nonlocal other_ran_after
            other_ran_after = waits

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)  # both in one batch, in trio's (random) order
            nursery.start_soon(other)
        return other_ran_after

    for _ in range(20):  # the order within the batch is random: try both
        assert trio.run(main) == 0


def test_a_task_waiting_for_io_is_served_while_polls_keep_finding_datagrams(
    pair: tuple[socket.socket, ...],
) -> None:
    # Every spin finds its datagram at once, so the spinning task never has to wait through
    # trio; another task's datagram must still reach it within about IDLE_YIELD_INTERVAL.
    a, b = pair
    idle = IdleWait()
    limit = 20_000  # iterations of a few microseconds each: far more than 1 ms
    spins = hits = 0
    woke_after = -1

    async def other() -> None:
        nonlocal woke_after
        await trio.lowlevel.wait_readable(a)
        woke_after = spins

    async def spinner() -> None:
        nonlocal spins, hits
        while spins < limit and woke_after < 0:
            b.sendto(b"x", b.getsockname())  # to itself: readable before the spin starts
            if await idle.wait(b.fileno(), _never_stopped):
                hits += 1
            b.recv(16)
            spins += 1

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            await trio.testing.wait_all_tasks_blocked()
            b.sendto(b"y", a.getsockname())  # other's datagram, waiting from now on
            nursery.start_soon(spinner)

    trio.run(main)
    assert 0 <= woke_after < limit // 4
    assert hits >= woke_after - 1  # the spin path was taken: it found the datagrams


def test_a_pending_cancellation_raises_even_with_a_datagram_ready(
    pair: tuple[socket.socket, ...],
) -> None:
    a, b = pair
    a.sendto(b"x", b.getsockname())
    idle = IdleWait()

    async def main() -> bool:
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await _wait(idle, b.fileno())
        return scope.cancelled_caught

    assert trio.run(main)


def test_a_wait_stopped_during_its_yield_does_not_spin(pair: tuple[socket.socket, ...]) -> None:
    # Another task closes the socket or interrupts the wait while the waiter yields: the
    # waiter must not then spin (nothing will come, and nobody else can run meanwhile).
    _, b = pair
    idle = IdleWait(busy_poll=5.0)
    interrupted = False

    async def main() -> tuple[bool, float]:
        result = True
        start = time.perf_counter()

        async def waiter() -> None:
            nonlocal result
            result = await idle.wait(b.fileno(), lambda: interrupted)

        async def interrupter() -> None:
            nonlocal interrupted
            interrupted = True

        async with trio.open_nursery() as nursery:
            # One batch, in either order: the waiter's look at the run cannot see the other
            # task, so it yields before spinning, and the other task runs then.
            nursery.start_soon(waiter)
            nursery.start_soon(interrupter)
        return result, time.perf_counter() - start

    result, took = trio.run(main)
    assert result is False
    assert took < 2.5  # at once, not after the 5 s budget


def test_a_closed_descriptor_ends_the_spin() -> None:
    idle = IdleWait(busy_poll=5.0)

    async def main() -> tuple[bool, float]:
        await trio.testing.wait_all_tasks_blocked()
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fd = closed.fileno()
        closed.close()  # nothing opens a descriptor before the wait: the number stays free
        start = time.perf_counter()
        found = await idle.wait(fd, _never_stopped)
        return found, time.perf_counter() - start

    found, took = trio.run(main)
    assert not found  # the caller's wait through trio reports the closing
    assert took < 1.0


def test_it_follows_the_descriptor_it_is_given(pair: tuple[socket.socket, ...]) -> None:
    # A client's leader and its reader task wait on different descriptors through one
    # IdleWait: a poll must look at the one asked for, not at the one before.
    a, b = pair
    a.sendto(b"x", b.getsockname())
    idle = IdleWait(busy_poll=0.01)
    assert _idle_wait_once(idle, b.fileno())[0]
    assert not _idle_wait_once(idle, a.fileno())[0]  # b is still readable, a is not
    assert _idle_wait_once(idle, b.fileno())[0]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX descriptor numbers")
def test_a_descriptor_above_1023_is_polled_too(pair: tuple[socket.socket, ...]) -> None:
    # select() cannot watch it (FD_SETSIZE); poll() can.
    import fcntl
    import os
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1100:
        pytest.skip("too few descriptors allowed")
    a, b = pair
    high = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD, 1024)
    try:
        assert high >= 1024
        a.sendto(b"x", b.getsockname())
        assert _idle_wait_once(IdleWait(), high)[0]
    finally:
        os.close(high)
