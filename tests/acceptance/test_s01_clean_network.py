"""Scenario 1: a clean network carries 10,000 small calls, all correct, with no retransmission."""

from __future__ import annotations

import trio

from rpc.testing import simulated_service
from tests.acceptance.helpers import Ledger, apply_checked, run_concurrently
from tests.acceptance.service import Chaos

CALLS = 10_000
CONCURRENCY = 100
#: Virtual seconds the scenario may take (MockClock): a hang fails instead of stalling.
BOUND = 60.0


async def test_s01_ten_thousand_calls_on_a_clean_network(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=1) as sim:
            client = chaos.client(sim.client)
            await run_concurrently(
                range(CALLS), lambda i: apply_checked(client, ledger, i), tasks=CONCURRENCY
            )
            client_stats = sim.client.statistics().transport
            server_stats = sim.server.statistics().transport
    net = sim.network.statistics()
    assert ledger.returned == set(range(CALLS))
    assert not ledger.failed
    ledger.check_at_most_once(impl.executions)
    assert net.dropped == 0  # the network really was clean...
    assert net.corrupted == net.duplicated == net.reordered == 0
    assert client_stats.retransmissions == server_stats.retransmissions == 0  # ...and stayed so
    assert client_stats.probes_sent == server_stats.probes_sent == 0
    assert client_stats.messages_sent >= CALLS
