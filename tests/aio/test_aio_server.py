"""The asyncio server over real UDP on 127.0.0.1, on the default loop and on uvloop: the
generated handler classes serve unchanged (``async def`` on asyncio), with the trio server's
semantics: at-most-once, deadlines and CANCELs reaching the handler, oneway calls, the
concurrency limit, a graceful drain; and the blocking and asyncio clients both call it."""

from __future__ import annotations

import asyncio
import threading

import pytest

import rpc
from tests.aio.test_aio_client import LOOPS, TIMEOUT, run
from tests.runtime.harness import LabImpl
from tests.runtime.lab_service import DivideByZero, LabClient, LabSyncClient

pytestmark = pytest.mark.realnet


class AsyncioLab(LabImpl):
    """The Lab handler with its one sleeping method on asyncio."""

    def __init__(self) -> None:
        super().__init__()
        self.started_sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping += 1
        self.started_sleeping.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.sleep_cancelled += 1
            raise
        self.sleep_finished += 1


@pytest.mark.parametrize("loop_name", LOOPS)
def test_asyncio_client_and_server(loop_name: str) -> None:
    impl = AsyncioLab()

    async def main() -> rpc.ServerStatistics:
        async with rpc.aio.Server([impl]) as server:
            host, port = server.address
            async with rpc.aio.connect(host, port) as client:
                calls = LabClient(client)
                assert await calls.divide(8, 2, timeout=TIMEOUT) == 4.0
                with pytest.raises(DivideByZero):
                    await calls.divide(1, 0, timeout=TIMEOUT)
                results = await asyncio.gather(
                    *(calls.bump("k", timeout=TIMEOUT) for _ in range(100))
                )
                assert sorted(results) == list(range(1, 101))
                await calls.record("event", timeout=TIMEOUT)
                await asyncio.gather(*(calls.sleep(0.01, timeout=TIMEOUT) for _ in range(20)))
                with pytest.raises(rpc.DeadlineExceeded):
                    await calls.sleep(30.0, timeout=0.2)
                for _ in range(int(TIMEOUT / 0.01)):  # the deadline ends the handler too
                    if impl.sleep_cancelled:
                        break
                    await asyncio.sleep(0.01)
            return server.statistics()

    stats = run(loop_name, main)
    assert impl.records == ["event"]
    assert impl.counters["k"] == 100  # each bump ran once
    assert impl.sleep_finished == 20
    assert impl.sleep_cancelled == 1
    assert stats.calls_completed >= 122


def test_the_blocking_client_calls_an_asyncio_server() -> None:
    impl = AsyncioLab()

    async def main() -> list[object]:
        async with rpc.aio.Server([impl]) as server:
            port = server.address[1]

            def script() -> list[object]:
                with rpc.SyncClient("127.0.0.1", port) as client:
                    lab = LabSyncClient(client)
                    return [lab.divide(7, 2, timeout=TIMEOUT), lab.bump("s", timeout=TIMEOUT)]

            return await asyncio.to_thread(script)

    assert run("asyncio", main) == [3.5, 1]


def test_concurrency_limit_refuses_with_server_busy() -> None:
    impl = AsyncioLab()

    async def main() -> list[object]:
        server = rpc.aio.Server([impl], max_concurrent=1, max_queued=1)
        async with rpc.aio.connect(*await server.start()) as client:
            calls = LabClient(client)
            outcomes = await asyncio.gather(
                *(calls.sleep(0.3, timeout=TIMEOUT) for _ in range(4)),
                return_exceptions=True,
            )
        await server.shutdown()
        return list(outcomes)

    outcomes = run("asyncio", main)
    busy = [o for o in outcomes if isinstance(o, rpc.ServerBusy)]
    assert len(busy) == 2  # one ran, one waited in the queue, two were refused
    assert all(o.outcome is rpc.CallOutcome.NOT_EXECUTED for o in busy)
    assert impl.sleep_finished == 2


def test_graceful_shutdown_drains_the_running_call() -> None:
    impl = AsyncioLab()

    async def main() -> tuple[object, object]:
        server = rpc.aio.Server([impl])
        await server.start()
        async with rpc.aio.connect(*server.address) as client:
            calls = LabClient(client)
            running = asyncio.ensure_future(calls.sleep(0.5, timeout=TIMEOUT))
            await impl.started_sleeping.wait()
            stopping = asyncio.ensure_future(server.shutdown(grace=5.0))
            await asyncio.sleep(0.05)
            refused: object
            try:
                await calls.bump("late", timeout=TIMEOUT)
                refused = None
            except rpc.RpcError as exc:
                refused = exc
            await stopping
            return await running, refused

    result, refused = run("asyncio", main)
    assert result is None  # the running call finished and its reply was delivered
    assert isinstance(refused, rpc.ShuttingDown)
    assert refused.safe_to_retry
    assert impl.sleep_finished == 1


def test_serve_until_signal_on_asyncio() -> None:
    impl = AsyncioLab()

    async def main() -> None:
        server = rpc.aio.Server([impl])
        await server.start()
        serving = asyncio.ensure_future(server.serve_until_signal(grace=5.0))
        await asyncio.sleep(0.05)
        threading.Timer(0.05, _send_sigterm).start()
        await asyncio.wait_for(serving, TIMEOUT)
        await server.wait_stopped()

    run("asyncio", main)


def _send_sigterm() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGTERM)
