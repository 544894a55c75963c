"""Scenario 6: only replies are lost (30%), and the handler has side effects: the side effects
equal the completed calls."""

from __future__ import annotations

import trio

from rpc.testing import DEFAULT_SERVER_ADDRESS, LinkFaults, SimNetwork, simulated_service
from tests.acceptance.helpers import Ledger, apply_checked, run_concurrently
from tests.acceptance.service import Chaos

CALLS = 1_000
BOUND = 600.0  # virtual seconds


async def test_s06_lost_replies_never_repeat_side_effects(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    net = SimNetwork(6)
    net.set_faults(DEFAULT_SERVER_ADDRESS, None, LinkFaults(loss=0.3))
    with trio.fail_after(BOUND):
        async with simulated_service([impl], network=net) as sim:
            client = chaos.client(sim.client)
            await run_concurrently(
                range(CALLS), lambda i: apply_checked(client, ledger, i), tasks=50
            )
            client_address = next(
                s.getsockname() for s in net.sockets() if s.getsockname() != sim.address
            )
    replies = net.link_statistics(DEFAULT_SERVER_ADDRESS, client_address)
    calls = net.link_statistics(client_address, DEFAULT_SERVER_ADDRESS)
    assert ledger.returned == set(range(CALLS))
    ledger.check_at_most_once(impl.executions)
    assert sum(impl.executions.values()) == len(ledger.returned)  # side effects == completions
    assert replies.dropped_loss > 0.25 * replies.sent  # replies really were lost
    assert calls.dropped == 0  # and nothing else was
