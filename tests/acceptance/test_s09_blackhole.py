"""Scenario 9: the link drops everything for a few seconds. Calls whose deadline outlasts the
blackhole complete afterwards; calls with shorter deadlines fail with ``DeadlineExceeded`` and
the documented outcome ``UNKNOWN`` (the transport keeps retransmitting the call after the caller
gave up, so it may still run), and never hang. Whatever ran, ran at most once."""

from __future__ import annotations

import trio

import rpc
from rpc.testing import simulated_service
from tests.acceptance.helpers import Ledger, apply_checked
from tests.acceptance.service import Chaos

BLACKHOLE = 3.0
LONG = 30.0  # outlasts the blackhole
SHORT = 1.0  # expires inside it
CALLS = 20
BOUND = 120.0  # virtual seconds


async def test_s09_blackhole_long_deadlines_complete_short_ones_fail(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=9) as sim:
            client = chaos.client(sim.client)
            await apply_checked(client, ledger, 0)  # warm: the server's epoch is known
            sim.network.blackhole(BLACKHOLE)
            async with trio.open_nursery() as nursery:
                for i in range(1, CALLS + 1):
                    timeout = LONG if i % 2 else SHORT
                    nursery.start_soon(
                        lambda i=i, t=timeout: apply_checked(client, ledger, i, timeout=t)
                    )
            await trio.sleep(LONG)  # anything still in flight would have run by now
    net = sim.network.statistics()
    long_calls = {i for i in range(1, CALLS + 1) if i % 2}
    short_calls = set(range(1, CALLS + 1)) - long_calls
    assert ledger.returned == long_calls | {0}
    assert set(ledger.failed) == short_calls
    for exc in ledger.failed.values():
        assert isinstance(exc, rpc.DeadlineExceeded)
        assert exc.outcome is rpc.CallOutcome.UNKNOWN
    # Some abandoned calls do arrive after the blackhole and run (once): reporting them as
    # NOT_DELIVERED ("retrying is always safe") would be a lie; check_at_most_once catches it.
    ledger.check_at_most_once(impl.executions)
    assert net.dropped_blackhole > 0
