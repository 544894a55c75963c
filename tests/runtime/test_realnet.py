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
