"""The asyncio client over real UDP on 127.0.0.1, against a trio server in a thread, on the
default event loop and on uvloop: the generated client classes work unchanged, and the call
semantics are those of the trio client (deadlines, cancellation reaching the server, retries,
at-most-once, oneway, refusals, long calls kept alive by probes)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import trio

import rpc
from rpc.transport.config import TransportConfig
from tests.runtime.harness import LabImpl, LabV1Impl
from tests.runtime.lab_service import DivideByZero, LabClient

pytestmark = pytest.mark.realnet

TIMEOUT = 10.0  # a generous bound of every call: a hang fails the test instead of stalling it

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a test dependency on the platforms it has
    uvloop = None

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    uvloop is None, reason="uvloop is not available on this platform"))]


class ServerThread:
    """A trio ``rpc.Server`` running in a thread of its own."""

    def __init__(self, handlers: list[rpc.Handler], **options: Any) -> None:
        self.handlers = handlers
        self.options = options
        self.port = 0
        self._ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.Event]] = queue.Queue()
        self._thread = threading.Thread(target=trio.run, args=(self._serve,), daemon=True)

    async def _serve(self) -> None:
        done = trio.Event()
        async with rpc.Server(self.handlers, **self.options) as server:
            self._ready.put((server.address[1], trio.lowlevel.current_trio_token(), done))
            await done.wait()  # then the server shuts down gracefully

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.port, self._token, self._done = self._ready.get(timeout=TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._done.set, trio_token=self._token)
        self._thread.join(TIMEOUT)


@pytest.fixture
def lab() -> Iterator[tuple[ServerThread, LabImpl]]:
    impl = LabImpl()
    with ServerThread([impl, LabV1Impl()]) as server:
        yield server, impl


def run(loop_name: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main()`` on a fresh event loop of the named kind."""
    if loop_name == "uvloop":
        assert uvloop is not None
        return uvloop.run(main())
    return asyncio.run(main())


@pytest.mark.parametrize("loop_name", LOOPS)
def test_calls_results_and_declared_errors(
    loop_name: str, lab: tuple[ServerThread, LabImpl]
) -> None:
    server, impl = lab

    async def main() -> tuple[list[int], float, rpc.ClientStatistics]:
        async with rpc.aio.connect("127.0.0.1", server.port) as client:
            calls = LabClient(client)
            assert await calls.divide(9, 3, timeout=TIMEOUT) == 3.0
            with pytest.raises(DivideByZero) as raised:
                await calls.divide(1, 0, timeout=TIMEOUT)
            assert raised.value.outcome is rpc.CallOutcome.EXECUTED
            results = await asyncio.gather(*(calls.bump("n", timeout=TIMEOUT) for _ in range(100)))
            await calls.record("oneway", timeout=TIMEOUT)
            rtt = await client.ping(timeout=TIMEOUT)
            return sorted(results), rtt, client.statistics()

    results, rtt, stats = run(loop_name, main)
    assert results == list(range(1, 101))  # each ran once, concurrently
    assert rtt > 0
    assert stats.calls_succeeded == 102  # pings are not calls
    assert stats.calls_failed == {"DivideByZero": 1}
    assert impl.records == ["oneway"]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_deadline_and_cancellation_reach_the_server(
    loop_name: str, lab: tuple[ServerThread, LabImpl]
) -> None:
    server, impl = lab

    async def main() -> rpc.DeadlineExceeded:
        async with rpc.aio.connect("127.0.0.1", server.port) as client:
            calls = LabClient(client)
            with pytest.raises(rpc.DeadlineExceeded) as raised:
                await calls.sleep(30.0, timeout=0.2)
            task = asyncio.ensure_future(calls.sleep(30.0, timeout=TIMEOUT))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(int(TIMEOUT / 0.01)):  # both CANCELs reach the server
                if impl.sleep_cancelled == 2:
                    break
                await asyncio.sleep(0.01)
            return raised.value

    error = run(loop_name, main)
    assert error.outcome is rpc.CallOutcome.UNKNOWN  # it was sent: it may have run
    assert impl.sleep_cancelled == 2
    assert impl.sleep_finished == 0


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_port_where_nothing_listens_fails_at_once(loop_name: str) -> None:
    with ServerThread([LabImpl()]) as server:
        port = server.port
    # The server is gone: nothing listens on its port any more.

    async def main() -> rpc.RpcError:
        async with rpc.aio.connect("127.0.0.1", port) as client:
            with pytest.raises(rpc.PeerUnreachable) as raised:
                await LabClient(client).bump("x", timeout=TIMEOUT)
            return raised.value

    error = run(loop_name, main)
    assert error.outcome is rpc.CallOutcome.NOT_DELIVERED
    assert error.safe_to_retry


def test_bad_timeouts_are_refused_before_sending(lab: tuple[ServerThread, LabImpl]) -> None:
    server, _ = lab

    async def main() -> int:
        async with rpc.aio.connect("127.0.0.1", server.port) as client:
            calls = LabClient(client)
            with pytest.raises(TypeError, match="timeout"):
                await calls.bump("x", timeout="1")  # type: ignore[arg-type]
            with pytest.raises(rpc.DeadlineExceeded) as raised:
                await calls.bump("x", timeout=0)
            assert raised.value.outcome is rpc.CallOutcome.NOT_DELIVERED
            return client.statistics().transport.datagrams_sent

    assert run("asyncio", main) == 0


def test_retry_policy_retries_what_did_not_run() -> None:
    impl = LabImpl()
    retry = rpc.RetryPolicy(attempts=50, initial_backoff=0.01, max_backoff=0.05)
    with ServerThread([impl], max_concurrent=1, max_queued=0) as server:

        async def main() -> int:
            async with rpc.aio.connect("127.0.0.1", server.port, retry=retry) as client:
                calls = LabClient(client)
                # One slot, no queue: concurrent calls are refused (ServerBusy, NOT_EXECUTED)
                # and retried until each gets the slot.
                await asyncio.gather(*(calls.sleep(0.05, timeout=TIMEOUT) for _ in range(8)))
                return client.statistics().retries

        retries = run("asyncio", main)
    assert impl.sleep_finished == 8  # each ran once
    assert retries > 0


def test_a_call_longer_than_peer_timeout_is_kept_alive_by_probes(
    lab: tuple[ServerThread, LabImpl],
) -> None:
    server, impl = lab
    config = TransportConfig(peer_timeout=0.8)

    async def main() -> int:
        async with rpc.aio.connect("127.0.0.1", server.port, config=config) as client:
            await LabClient(client).sleep(2.4, timeout=TIMEOUT)  # 3x peer_timeout
            return client.statistics().probes_sent

    assert run("asyncio", main) >= 2
    assert impl.sleep_finished == 1
