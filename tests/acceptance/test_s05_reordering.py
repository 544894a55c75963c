"""Scenario 5: heavy reordering and jitter: every result is matched to the call that asked."""

from __future__ import annotations

import trio

from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.helpers import Ledger, apply_checked, run_concurrently
from tests.acceptance.service import Chaos

SHUFFLING = LinkFaults(reorder=0.4, reorder_delay=0.03, delay=0.005, jitter=0.02)
CALLS = 500
BOUND = 600.0  # virtual seconds


async def test_s05_reordered_replies_reach_their_own_calls(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=5, faults=SHUFFLING) as sim:
            client = chaos.client(sim.client)
            # Each call carries bytes only it knows; apply_checked compares id, data and digest.
            await run_concurrently(
                range(CALLS), lambda i: apply_checked(client, ledger, i, size=1_500), tasks=100
            )
    net = sim.network.statistics()
    assert ledger.returned == set(range(CALLS))
    ledger.check_at_most_once(impl.executions)
    assert net.reordered > 0.1 * net.delivered  # the order really was shuffled
    assert net.held_back > 0
