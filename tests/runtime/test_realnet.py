"""End to end over real UDP sockets on 127.0.0.1: the async client and the blocking client."""

from __future__ import annotations

import pytest
import trio

import rpc
from rpc.errors import CallOutcome
from tests.runtime.harness import LabImpl, LabV1Impl
from tests.runtime.lab_service import (
    LAB_V2,
    Color,
    DivideByZero,
    LabClient,
    LabSyncClient,
    Point,
)

pytestmark = pytest.mark.realnet

#: Generous bound of every real-network call: a hang fails the test instead of stalling it.
TIMEOUT = 10.0
SLEEP = LAB_V2.methods[9]


async def test_async_client_over_loopback() -> None:
    impl = LabImpl()
    async with rpc.Server([impl, LabV1Impl()]) as server:
        host, port = server.address
        assert host == "127.0.0.1"
        assert port > 0
        async with rpc.connect(host, port) as client:
            lab = LabClient(client)
            assert await lab.divide(9, 3, timeout=TIMEOUT) == 3.0
            with pytest.raises(DivideByZero):
                await lab.divide(1, 0, timeout=TIMEOUT)
            results = []

            async def bump() -> None:
                results.append(await lab.bump("n", timeout=TIMEOUT))

            async with trio.open_nursery() as nursery:
                for _ in range(100):
                    nursery.start_soon(bump)
            assert await client.ping(timeout=TIMEOUT) > 0
    assert sorted(results) == list(range(1, 101))


async def test_sync_client_against_trio_server() -> None:
    impl = LabImpl()

    def script(port: int) -> list[object]:
        out: list[object] = []
        with rpc.SyncClient("127.0.0.1", port) as client:
            lab = LabSyncClient(client)
            out.append(lab.divide(7, 2, timeout=TIMEOUT))
            out.extend(lab.bump("s", timeout=TIMEOUT) for _ in range(50))
            try:
                lab.divide(1, 0, timeout=TIMEOUT)
            except DivideByZero as exc:
                out.append(exc.dividend)
            bag = lab.containers([1, 2], frozenset({Color.GREEN}), {"a": 1}, {Point(x=1): "p"},
                                 timeout=TIMEOUT)
            out.append(bag.items)
            lab.record("from sync", timeout=TIMEOUT)
            out.append(client.ping(timeout=TIMEOUT) > 0)
            try:
                lab.divide(2**40, 1)
            except rpc.InvalidArgument as exc:
                out.append(exc.outcome)
            out.append(client.statistics().calls_succeeded)
        try:
            lab.bump("s")
        except rpc.ClientClosed:
            out.append("closed")
        return out

    async with rpc.Server([impl]) as server:
        out = await trio.to_thread.run_sync(script, server.address[1])
    assert out == [3.5, *range(1, 51), 1, [2, 1], True, CallOutcome.NOT_DELIVERED, 53, "closed"]
    assert impl.records == ["from sync"]


async def test_sync_client_deadline_against_sleeping_handler() -> None:
    impl = LabImpl()

    def script(port: int) -> rpc.DeadlineExceeded | None:
        with rpc.SyncClient("127.0.0.1", port) as client:
            try:
                client.call(LAB_V2, SLEEP, (5.0,), timeout=0.05)
            except rpc.DeadlineExceeded as exc:
                return exc
        return None

    async with rpc.Server([impl]) as server:
        error = await trio.to_thread.run_sync(script, server.address[1])
        with trio.fail_after(TIMEOUT):
            while impl.sleep_cancelled == 0:  # the CANCEL reaches the server
                await trio.sleep(0.01)
    assert error is not None
    assert error.outcome is CallOutcome.UNKNOWN


class StepCounter(trio.abc.Instrument):
    """Counts the steps of the tasks running one object's ``run`` method (a driver's reader)."""

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        frame = getattr(task.coro, "cr_frame", None)
        if frame is not None and frame.f_locals.get("self") is self.owner:
            self.steps += 1


async def test_sequential_calls_read_their_own_replies() -> None:
    # After the first reply, each call reads the socket itself (it leads): the driver's
    # reader task stays parked instead of waking for every reply and handing it over.
    async with rpc.Server([LabImpl()]) as server, rpc.connect(*server.address) as client:
        lab = LabClient(client)
        counter = StepCounter(client._driver)
        await lab.bump("warm-up", timeout=TIMEOUT)
        trio.lowlevel.add_instrument(counter)
        try:
            for expected in range(1, 201):
                assert await lab.bump("n", timeout=TIMEOUT) == expected
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert counter.steps < 50  # timer and grace wake-ups only; over 200 without leading


async def test_a_leading_call_past_its_deadline_fails_and_the_next_one_leads() -> None:
    impl = LabImpl()
    async with rpc.Server([impl]) as server, rpc.connect(*server.address) as client:
        lab = LabClient(client)
        await lab.bump("n", timeout=TIMEOUT)  # the reader steps aside: later calls lead
        with pytest.raises(rpc.DeadlineExceeded) as caught:
            await client.call(LAB_V2, SLEEP, (5.0,), timeout=0.05)
        assert caught.value.outcome is CallOutcome.UNKNOWN
        assert await lab.bump("n", timeout=TIMEOUT) == 2
        with trio.fail_after(TIMEOUT):
            while impl.sleep_cancelled == 0:  # the CANCEL reaches the server
                await trio.sleep(0.01)


async def test_cancelling_the_leader_hands_the_socket_to_the_waiting_calls() -> None:
    impl = LabImpl()
    async with rpc.Server([impl]) as server, rpc.connect(*server.address) as client:
        lab = LabClient(client)
        await lab.bump("n", timeout=TIMEOUT)
        results: list[int] = []

        async def follower() -> None:
            results.append(await lab.bump("n", timeout=TIMEOUT))

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                leader = trio.CancelScope()

                async def sleeper() -> None:
                    with leader:
                        await client.call(LAB_V2, SLEEP, (5.0,), timeout=TIMEOUT)

                nursery.start_soon(sleeper)
                await trio.sleep(0.05)  # the sleeping call leads, waiting for its reply
                for _ in range(20):
                    nursery.start_soon(follower)
                await trio.sleep(0)
                leader.cancel()
        assert leader.cancelled_caught
        assert sorted(results) == list(range(2, 22))
        assert await lab.bump("n", timeout=TIMEOUT) == 22
        assert client.statistics().in_flight == 0


async def test_closing_the_client_fails_a_leading_call() -> None:
    async with rpc.Server([LabImpl()]) as server:
        errors: list[rpc.RpcError] = []
        with trio.fail_after(TIMEOUT):
            async with rpc.connect(*server.address) as client, trio.open_nursery() as nursery:
                await LabClient(client).bump("n", timeout=TIMEOUT)

                async def sleeper() -> None:
                    try:
                        await client.call(LAB_V2, SLEEP, (5.0,), timeout=TIMEOUT)
                    except rpc.ClientClosed as exc:
                        errors.append(exc)

                nursery.start_soon(sleeper)
                await trio.sleep(0.05)
                client.close()
    assert len(errors) == 1
    assert errors[0].outcome is CallOutcome.UNKNOWN
