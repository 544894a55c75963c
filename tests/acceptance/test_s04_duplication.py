"""Scenario 4: every datagram duplicated in both directions: handler executions equal calls."""

from __future__ import annotations

import pytest
import trio

from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.helpers import (
    REALNET_BOUND,
    Ledger,
    apply_checked,
    proxied_service,
    run_concurrently,
)
from tests.acceptance.service import Chaos

DUPLICATING = LinkFaults(duplicate=1.0)  # jitter and reordering are scenario 5
CALLS = 1_000
REALNET_CALLS = 200
BOUND = 600.0  # virtual seconds


async def test_s04_every_datagram_twice_executes_each_call_once(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=4, faults=DUPLICATING) as sim:
            client = chaos.client(sim.client)
            await run_concurrently(
                range(CALLS), lambda i: apply_checked(client, ledger, i), tasks=50
            )
            server_stats = sim.server.statistics()
    net = sim.network.statistics()
    assert ledger.returned == set(range(CALLS))
    ledger.check_at_most_once(impl.executions)
    assert sum(impl.executions.values()) == CALLS
    assert net.duplicated == net.sent  # every single datagram was sent twice
    assert server_stats.transport.duplicate_datagrams > 0  # and the copies were recognised


@pytest.mark.realnet
async def test_s04_realnet_every_datagram_twice(chaos: Chaos) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(REALNET_BOUND):
        async with proxied_service(
            [impl], to_server=DUPLICATING, to_client=DUPLICATING, seed=4
        ) as (server, proxy, conn):
            client = chaos.client(conn)
            await run_concurrently(
                range(REALNET_CALLS), lambda i: apply_checked(client, ledger, i), tasks=20
            )
            stats = proxy.statistics()
            duplicates_seen = server.statistics().transport.duplicate_datagrams
    assert ledger.returned == set(range(REALNET_CALLS))
    ledger.check_at_most_once(impl.executions)
    assert sum(impl.executions.values()) == REALNET_CALLS
    assert stats.to_server.duplicated == stats.to_server.sent > 0
    assert stats.to_client.duplicated == stats.to_client.sent > 0
    assert duplicates_seen > 0
