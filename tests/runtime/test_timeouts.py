"""One deadline covers the whole call: the lock wait, the handshake, every attempt; bad values."""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

import rpc
from codegen.regen_golden import EXPECTED_DIR
from rpc.errors import CallOutcome
from rpc.testing import LinkFaults, SimNetwork
from tests.codegen.generated_modules import load_modules
from tests.runtime.harness import SERVER_ADDR, HeldBump, LabImpl, LabV1Impl, sim_lab, sim_server
from tests.runtime.lab_service import LAB_V2

calculator: ModuleType = load_modules(EXPECTED_DIR, ["calculator"])["calculator"]
BUMP = next(m for m in LAB_V2.methods if m.name == "bump")  # cached: needs the handshake
SLEEP = next(m for m in LAB_V2.methods if m.name == "sleep")  # idempotent
WHOAMI = next(m for m in LAB_V2.methods if m.name == "whoami")  # cached; reports its budget

#: ``(timeout, retry, exception, message)``: what the runtime refuses before anything else.
BAD_OPTIONS: list[tuple[object, object, type[Exception], str]] = [
    ("1", None, TypeError, "timeout must be a number of seconds or None, not 'str'"),
    (True, None, TypeError, "timeout must be a number of seconds or None, not 'bool'"),
    (b"1", None, TypeError, "not 'bytes'"),
    (math.nan, None, ValueError, "timeout must be a number of seconds or None, not NaN"),
    (1.0, 3, TypeError, "retry must be an rpc.RetryPolicy or None, not 'int'"),
    (1.0, "off", TypeError, "retry must be an rpc.RetryPolicy or None, not 'str'"),
]


@contextlib.contextmanager
def silent_udp_port() -> Iterator[tuple[socket.socket, int]]:
    """A bound UDP socket on 127.0.0.1 that nobody reads: a 'server' that receives only."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock, sock.getsockname()[1]


def received_nothing(sock: socket.socket) -> bool:
    try:
        sock.recv(65536)
    except BlockingIOError:
        return True
    return False


# -- values the runtime refuses ---------------------------------------------------------------


@pytest.mark.parametrize(("timeout", "retry", "error", "message"), BAD_OPTIONS)
async def test_bad_call_options_are_refused_by_the_generated_async_stub(
    autojump_clock: trio.testing.MockClock,
    timeout: Any, retry: Any, error: type[Exception], message: str,
) -> None:
    net = SimNetwork(1)
    async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
        calc = calculator.CalculatorClient(client)
        with pytest.raises(error) as info:
            await calc.add(1, 2, timeout=timeout, retry=retry)
        stats = client.statistics()
    assert str(info.value).startswith("Calculator.add(): ")
    assert message in str(info.value)
    assert stats.calls_started == 0
    assert net.statistics().sent == 0


@pytest.mark.parametrize(("timeout", "retry", "error", "message"), BAD_OPTIONS)
def test_bad_call_options_are_refused_by_the_generated_sync_stub(
    timeout: Any, retry: Any, error: type[Exception], message: str,
) -> None:
    with silent_udp_port() as (sock, port), rpc.SyncClient("127.0.0.1", port) as client:
        calc = calculator.CalculatorSyncClient(client)
        with pytest.raises(error) as info:
            calc.divide(1, 2, timeout=timeout, retry=retry)
        stats = client.statistics()
        assert received_nothing(sock)
    assert str(info.value).startswith("Calculator.divide(): ")
    assert message in str(info.value)
    assert stats.calls_started == 0
    assert stats.transport.datagrams_sent == 0


async def test_a_bad_default_policy_is_refused() -> None:
    bad: Any = 3
    with pytest.raises(TypeError, match=r"retry must be an rpc\.RetryPolicy or None, not 'int'"):
        async with rpc.connect(*SERVER_ADDR, socket=SimNetwork(1).socket(), retry=bad):
            pass  # pragma: no cover
    with silent_udp_port() as (_, port), pytest.raises(TypeError, match="not 'float'"):
        rpc.SyncClient("127.0.0.1", port, retry=bad + 0.5)


async def test_int_and_infinite_timeouts_are_numbers_of_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, _, client):
        assert await client.call(LAB_V2, BUMP, ("k",), timeout=5) == 1
        assert await client.call(LAB_V2, BUMP, ("k",), timeout=math.inf) == 2
        budget = await client.call(LAB_V2, WHOAMI, (), timeout=math.inf)
    assert budget.endswith(" none")  # an infinite timeout is no deadline at all


# -- timeouts of zero or less -----------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, 0.0, -1.0, -math.inf])
async def test_no_time_left_fails_at_once_and_sends_nothing(
    autojump_clock: trio.testing.MockClock, timeout: float
) -> None:
    net = SimNetwork(2)
    async with sim_server(net, [LabImpl(), LabV1Impl()]) as server, \
            rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
        start = trio.current_time()
        with pytest.raises(rpc.DeadlineExceeded) as cached:
            await client.call(LAB_V2, BUMP, ("k",), timeout=timeout, retry=rpc.RetryPolicy())
        with pytest.raises(rpc.DeadlineExceeded) as idempotent:
            await client.call(LAB_V2, SLEEP, (1.0,), timeout=timeout)
        assert trio.current_time() == start
        stats = client.statistics()
        received = server.statistics().calls_received
    assert net.statistics().sent == 0
    assert stats.transport.datagrams_sent == 0
    assert received == 0
    assert cached.value.outcome is idempotent.value.outcome is CallOutcome.NOT_DELIVERED
    assert cached.value.safe_to_retry
    assert idempotent.value.idempotent
    assert (stats.calls_started, stats.calls_failed) == (2, {"DeadlineExceeded": 2})


@pytest.mark.parametrize("timeout", [0, -0.5])
def test_no_time_left_fails_at_once_on_the_blocking_client(timeout: float) -> None:
    with silent_udp_port() as (sock, port), rpc.SyncClient("127.0.0.1", port) as client:
        with pytest.raises(rpc.DeadlineExceeded) as info:
            client.call(LAB_V2, BUMP, ("k",), timeout=timeout)
        stats = client.statistics()
        assert received_nothing(sock)
    assert info.value.outcome is CallOutcome.NOT_DELIVERED
    assert stats.transport.datagrams_sent == 0
    assert (stats.calls_started, stats.calls_failed) == (1, {"DeadlineExceeded": 1})


# -- the handshake is inside the deadline ----------------------------------------------------


async def test_the_handshake_counts_toward_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 0.5 s each way: the handshake ping takes 1 s of the call's 5.
    net = SimNetwork(3, faults=LinkFaults(delay=0.5))
    async with sim_server(net, [LabImpl(), LabV1Impl()]), \
            rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
        start = trio.current_time()
        whoami = await client.call(LAB_V2, WHOAMI, (), timeout=5.0)
        elapsed = trio.current_time() - start
    assert elapsed == pytest.approx(2.0, abs=0.02)  # ping round trip + call round trip
    # The budget sent is what the handshake left (the server counts it from the CALL's arrival).
    assert whoami.endswith(" 4.0")


async def test_a_handshake_that_never_ends_fails_at_the_deadline_undelivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(4)
    async with sim_server(net, [LabImpl()]) as server, \
            rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
        net.partition(SERVER_ADDR, None)
        start = trio.current_time()
        with pytest.raises(rpc.DeadlineExceeded) as info:
            await client.call(LAB_V2, BUMP, ("k",), timeout=2.0, retry=rpc.RetryPolicy())
        elapsed = trio.current_time() - start
        net.heal()
        received = server.statistics().calls_received
    assert net.statistics().dropped_partition > 0
    assert elapsed == pytest.approx(2.0, abs=0.01)
    assert info.value.outcome is CallOutcome.NOT_DELIVERED
    assert received == 0


# -- the blocking client's lock wait is inside the deadline ---------------------------------


@contextlib.asynccontextmanager
async def held_real_server() -> AsyncIterator[tuple[HeldBump, rpc.Server]]:
    impl = HeldBump()
    async with rpc.Server([impl]) as server:
        try:
            yield impl, server
        finally:
            impl.release.set()


@pytest.mark.realnet
async def test_waiting_for_another_threads_call_counts_toward_the_deadline() -> None:
    async with held_real_server() as (impl, server):
        with rpc.SyncClient(*server.address) as client:
            async with trio.open_nursery() as nursery:
                first: list[object] = []

                async def slow_call() -> None:
                    first.append(await trio.to_thread.run_sync(
                        lambda: client.call(LAB_V2, BUMP, ("held",), timeout=30.0)
                    ))

                nursery.start_soon(slow_call)
                await impl.entered.wait()  # the first thread holds the client, its handler waits

                def second_call() -> rpc.RpcError:
                    with pytest.raises(rpc.DeadlineExceeded) as info:
                        client.call(LAB_V2, BUMP, ("second",), timeout=0.2)
                    return info.value

                # Without the deadline on the lock wait, this waits for the first call, which
                # waits for the release below: the test would fail at fail_after.
                with trio.fail_after(20.0):
                    error = await trio.to_thread.run_sync(second_call, abandon_on_cancel=True)
                received_meanwhile = server.statistics().calls_received
                impl.release.set()
            stats = client.statistics()
    assert first == [1]
    assert error.outcome is CallOutcome.NOT_DELIVERED
    assert "another thread's call" in error.message
    assert received_meanwhile == 1  # the second call was never sent
    assert impl.counters == {"held": 1}
    assert stats.calls_started == 2
    assert stats.calls_succeeded == 1
    assert stats.calls_failed == {"DeadlineExceeded": 1}
