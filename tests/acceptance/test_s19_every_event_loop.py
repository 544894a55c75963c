"""Scenario 19: the same lossy workload on every event loop the framework serves. Server and
client both run on trio, on asyncio, or on uvloop, over real UDP through the chaos proxy (in a
thread of its own: ``rpc.testing.ChaosProxyThread``), which loses, duplicates and corrupts
datagrams both ways: every call returns its own intact result, and none runs twice. The
simulated network needs trio's clock, so on asyncio the faults apply to real traffic in real
time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trio

import rpc
from rpc.testing import ChaosProxyThread, LinkFaults
from tests.acceptance.helpers import Ledger, apply_checked
from tests.acceptance.service import Chaos
from tests.examples.harness import free_udp_port

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a test dependency where it exists
    uvloop = None

pytestmark = pytest.mark.realnet

CALLS = 300
CONCURRENCY = 16
FAULTS = LinkFaults(loss=0.10, duplicate=0.05, corrupt=0.05)
LOOPS = ["trio", "asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    uvloop is None, reason="uvloop is not available on this platform"))]


@pytest.fixture
def ports() -> int:
    """A free UDP port for the server (the proxy needs it before the server starts)."""
    return free_udp_port()


async def _workload(client: Any, ledger: Ledger) -> None:
    ids = iter(range(1, CALLS + 1))

    async def worker() -> None:
        for call_id in ids:
            await apply_checked(client, ledger, call_id, size=600, timeout=60.0)

    if _on_asyncio():
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    else:
        async with trio.open_nursery() as nursery:
            for _ in range(CONCURRENCY):
                nursery.start_soon(worker)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop == "trio":
        trio.run(main)
    elif loop == "uvloop":
        assert uvloop is not None
        uvloop.run(main())
    else:
        asyncio.run(main())


@pytest.mark.parametrize("loop", LOOPS)
def test_s19_lossy_workload_on_every_loop(chaos: Chaos, ports: int, loop: str) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    proxy = ChaosProxyThread(("127.0.0.1", ports), FAULTS, FAULTS, seed=19)

    async def main() -> None:
        if loop == "trio":
            async with rpc.Server([impl], port=ports), rpc.connect(
                "127.0.0.1", proxy_port
            ) as conn:
                await _workload(chaos.client(conn), ledger)
        else:
            async with rpc.aio.Server([impl], port=ports), rpc.aio.connect(
                "127.0.0.1", proxy_port
            ) as conn:
                await _workload(chaos.client(conn), ledger)

    with proxy:
        proxy_port = proxy.address[1]
        _run(loop, main)
    assert ledger.failed == {}
    assert ledger.returned == set(range(1, CALLS + 1))
    ledger.check_at_most_once(impl.executions)
    stats = proxy.statistics()
    assert stats.to_server.dropped_loss > 0
    assert stats.to_client.dropped_loss > 0
    assert stats.to_server.duplicated > 0
    assert stats.to_server.corrupted > 0
