"""Scenario 2: 30% loss each way, in bursts of up to 3: every call completes, executed once."""

from __future__ import annotations

import pytest
import trio

import rpc
from rpc.testing import LinkFaults, SimNetwork, TraceEvent, simulated_service
from tests.acceptance.helpers import (
    REALNET_BOUND,
    Ledger,
    apply_checked,
    proxied_service,
    run_concurrently,
)
from tests.acceptance.service import Chaos, payload

LOSSY = LinkFaults(loss=0.3, burst_max=3)
CALLS = 1_000
REALNET_CALLS = 200
CONCURRENCY = 50
BOUND = 600.0  # virtual seconds


def longest_loss_run(trace: tuple[TraceEvent, ...]) -> int:
    """The longest run of consecutive datagrams lost on one link, as the trace shows it."""
    runs: dict[tuple[object, object], int] = {}
    longest = 0
    for event in trace:
        if event.kind == "send":
            continue
        link = (event.src, event.dst)
        lost = event.kind == "drop" and event.detail == "loss"
        runs[link] = runs.get(link, 0) + 1 if lost else 0
        longest = max(longest, runs[link])
    return longest


async def test_s02_thousand_calls_through_bursty_loss(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    net = SimNetwork(2, faults=LOSSY, trace_limit=100_000)
    with trio.fail_after(BOUND):
        async with simulated_service([impl], network=net) as sim:
            client = chaos.client(sim.client)
            await run_concurrently(
                range(CALLS), lambda i: apply_checked(client, ledger, i), tasks=CONCURRENCY
            )
            retransmissions = sim.client.statistics().transport.retransmissions
    stats = net.statistics()
    assert ledger.returned == set(range(CALLS))
    assert not ledger.failed
    ledger.check_at_most_once(impl.executions)
    assert sum(impl.executions.values()) == CALLS
    assert 0.25 < stats.dropped_loss / stats.sent < 0.35  # the loss really happened...
    assert longest_loss_run(net.trace()) >= 2  # ...in bursts...
    assert retransmissions > 0  # ...and was repaired


@pytest.mark.realnet
async def test_s02_realnet_calls_through_bursty_loss(chaos: Chaos) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(REALNET_BOUND):
        async with proxied_service([impl], to_server=LOSSY, to_client=LOSSY, seed=2) as (
            _, proxy, conn
        ):
            client = chaos.client(conn)
            await run_concurrently(
                range(REALNET_CALLS), lambda i: apply_checked(client, ledger, i), tasks=20
            )
            stats = proxy.statistics()
    assert ledger.returned == set(range(REALNET_CALLS))
    ledger.check_at_most_once(impl.executions)
    assert stats.to_server.dropped_loss > 0
    assert stats.to_client.dropped_loss > 0


@pytest.mark.realnet
async def test_s02_realnet_blocking_client_through_bursty_loss(chaos: Chaos) -> None:
    """The generated blocking client (its own driver, no event loop) under the same loss."""
    impl = chaos.impl()
    calls = 100

    def script(address: tuple[str, int]) -> tuple[list[int], int]:
        returned = []
        with rpc.SyncClient(*address) as conn:
            client = chaos.sync_client(conn)
            for i in range(calls):
                data = payload(i, 600)
                echo = client.apply(i, data, timeout=REALNET_BOUND / 2)
                assert echo.data == data
                returned.append(echo.id)
            retransmissions = conn.statistics().transport.retransmissions
        return returned, retransmissions

    with trio.fail_after(REALNET_BOUND):
        async with proxied_service([impl], to_server=LOSSY, to_client=LOSSY, seed=22) as (
            _, proxy, _
        ):
            returned, retransmissions = await trio.to_thread.run_sync(script, proxy.address)
            stats = proxy.statistics()
    assert returned == list(range(calls))
    assert impl.executions == dict.fromkeys(range(calls), 1)
    assert stats.to_server.dropped_loss > 0
    assert stats.to_client.dropped_loss > 0
    assert retransmissions > 0
