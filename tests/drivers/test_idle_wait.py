"""IdleWait: a blocking wait only while the trio run has nothing else to do (real clock)."""

from __future__ import annotations

import socket
import time

import pytest
import trio
import trio.testing

from rpc.drivers._idle_wait import IDLE_WAIT_LIMIT, IdleWait


@pytest.fixture
def trio_waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors waited for through trio's own ``wait_readable`` (not the idle path)."""
    waited: list[int] = []
    real = trio.lowlevel.wait_readable

    async def counting(fd: int) -> None:
        waited.append(fd)
        await real(fd)

    monkeypatch.setattr(trio.lowlevel, "wait_readable", counting)
    return waited


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking waits may last a minute: only what ends them early lets a test finish."""
    monkeypatch.setattr("rpc.drivers._idle_wait.IDLE_WAIT_LIMIT", 60.0)


def test_an_idle_run_waits_in_select(
    pair: tuple[socket.socket, ...], trio_waits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The datagram comes in 50 ms.
    monkeypatch.setattr("rpc.drivers._idle_wait.IDLE_WAIT_LIMIT", 5.0)
    a, b = pair
    idle = IdleWait()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            # The datagram comes while the task waits (a thread sends it: no other task runs).
            nursery.start_soon(trio.to_thread.run_sync, _send_later, a, b.getsockname())
            await trio.testing.wait_all_tasks_blocked()
            await _wait(idle, b.fileno())

    trio.run(main)
    assert b.recv(16) == b"x"
    assert trio_waits == []


def test_a_busy_run_waits_through_trio(
    pair: tuple[socket.socket, ...], trio_waits: list[int]
) -> None:
    a, b = pair
    a.sendto(b"x", b.getsockname())
    idle = IdleWait()

    async def main() -> float:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0)  # runnable: the run is not idle
            timeout = idle.idle_timeout()
            await _wait(idle, b.fileno())
        return timeout

    assert trio.run(main) == 0.0
    assert trio_waits == [b.fileno()]


async def _wait(idle: IdleWait, fd: int) -> None:
    """How the drivers use it: the idle wait, else trio's."""
    if not await idle.wait(fd, _never_closed):
        await trio.lowlevel.wait_readable(fd)


def _never_closed() -> bool:
    return False


def _send_later(a: socket.socket, addr: tuple[str, int]) -> None:
    time.sleep(0.05)
    a.sendto(b"x", addr)
    time.sleep(0.1)  # the thread's result (trio's wake-up socket) comes well after the datagram


def test_it_declines_while_another_task_waits_for_io(pair: tuple[socket.socket, ...]) -> None:
    a, _ = pair
    idle = IdleWait()

    async def main() -> tuple[float, float]:
        await trio.testing.wait_all_tasks_blocked()  # trio's own tasks start runnable
        alone = idle.idle_timeout()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.lowlevel.wait_readable, a)  # nothing ever comes to a
            await trio.testing.wait_all_tasks_blocked()
            watched = idle.idle_timeout()
            nursery.cancel_scope.cancel()
        return alone, watched

    alone, watched = trio.run(main)
    assert alone == IDLE_WAIT_LIMIT
    assert watched == 0.0


@pytest.mark.usefixtures("patient")
def test_a_near_deadline_shortens_the_wait() -> None:
    # The limit is a minute here: a deadline 10 s away must bound the wait, however slow the
    # machine running the test.
    idle = IdleWait()

    async def main() -> float:
        await trio.testing.wait_all_tasks_blocked()  # trio's own tasks start runnable
        with trio.move_on_after(10.0):
            return idle.idle_timeout()
        raise AssertionError("the scope ended early")

    assert 5.0 < trio.run(main) <= 10.0


def test_it_declines_under_an_autojump_clock() -> None:
    idle = IdleWait()

    async def main() -> float:
        return idle.idle_timeout()

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == 0.0


def test_a_pending_cancellation_raises_even_with_a_datagram_ready(
    pair: tuple[socket.socket, ...],
) -> None:
    a, b = pair
    a.sendto(b"x", b.getsockname())
    idle = IdleWait()

    async def main() -> bool:
        with trio.CancelScope() as scope:
            scope.cancel()
            await _wait(idle, b.fileno())
        return scope.cancelled_caught

    assert trio.run(main)


@pytest.mark.usefixtures("patient")
def test_a_wake_up_from_another_thread_ends_the_blocking_wait(
    pair: tuple[socket.socket, ...],
) -> None:
    # Nothing arrives on the socket, and the blocking wait may last a minute: the thread's
    # result must still reach the run at once, through trio's wake-up socket, which the
    # blocking wait watches (else fail_after's deadline, 5 s, ends the wait and the test).
    _, b = pair
    idle = IdleWait()

    async def main() -> str:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:

                async def wait_forever() -> None:
                    await trio.testing.wait_all_tasks_blocked()  # main waits for its thread
                    while True:  # the run is idle now: this blocks in select
                        await _wait(idle, b.fileno())

                nursery.start_soon(wait_forever)
                result = await trio.to_thread.run_sync(_after_a_while)
                nursery.cancel_scope.cancel()
        return result

    assert trio.run(main) == "from the thread"


def _after_a_while() -> str:
    time.sleep(0.2)  # in the thread: the waiting task blocks in select by then
    return "from the thread"


def test_a_task_scheduled_in_the_same_batch_is_not_starved(
    pair: tuple[socket.socket, ...],
) -> None:
    # The run queue does not show tasks already taken for the run loop's current batch: a
    # waiter that never yielded would keep them waiting while its datagrams keep coming.
    a, b = pair
    idle = IdleWait()

    async def main() -> int:
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


@pytest.mark.usefixtures("patient")
def test_a_wait_stopped_during_its_yield_does_not_block(
    pair: tuple[socket.socket, ...],
) -> None:
    # Another task closes the socket or interrupts the wait while the waiter yields: the
    # waiter must not then block (nothing will come, and nobody else can run to say so).
    _, b = pair
    idle = IdleWait()
    interrupted = False

    async def main() -> tuple[bool, float]:
        nonlocal interrupted
        result = True
        start = trio.current_time()
        with trio.move_on_after(5):  # a blocking wait would end only here
            async with trio.open_nursery() as nursery:

                async def waiter() -> None:
                    nonlocal result
                    result = await idle.wait(b.fileno(), lambda: interrupted)

                async def interrupter() -> None:
                    nonlocal interrupted
                    interrupted = True

                # One batch, in either order: the waiter's idle check cannot see the other
                # task, so it yields before blocking, and the other task runs then.
                nursery.start_soon(waiter)
                nursery.start_soon(interrupter)
        return result, trio.current_time() - start

    result, took = trio.run(main)
    assert result is False
    assert took < 2.5  # at once, not at the 5 s deadline
