"""Scenario 3: 30% corruption each way (bytes anywhere in the datagram): every call completes,
every corrupted datagram is counted as a checksum failure, the application never sees damage."""

from __future__ import annotations

import pytest
import trio

from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.helpers import (
    REALNET_BOUND,
    Ledger,
    apply_checked,
    eventually,
    proxied_service,
    run_concurrently,
)
from tests.acceptance.service import Chaos

CORRUPTING = LinkFaults(corrupt=0.3, corrupt_max_bytes=4)
CALLS = 1_000
REALNET_CALLS = 200
#: Large enough that most messages span several datagrams (damage in any fragment matters).
SIZE = 3_000
#: One datagram per message over real sockets: each loss there costs real probe timeouts.
REALNET_SIZE = 500
BOUND = 600.0  # virtual seconds


async def test_s03_corruption_is_caught_by_the_checksum(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=3, faults=CORRUPTING) as sim:
            client = chaos.client(sim.client)
            await run_concurrently(
                range(CALLS), lambda i: apply_checked(client, ledger, i, size=SIZE), tasks=50
            )
            # Snapshot before the sockets close: a datagram arriving later would be unreachable.
            await trio.sleep(1.0)  # let the last acks land
            client_stats = sim.client.statistics().transport
            server_stats = sim.server.statistics().transport
            net = sim.network.statistics()
    assert ledger.returned == set(range(CALLS))  # apply_checked compared every byte and digest
    ledger.check_at_most_once(impl.executions)
    assert net.corrupted > 0.25 * net.sent
    assert net.dropped == 0
    assert client_stats.crc_failures + server_stats.crc_failures == net.corrupted
    assert client_stats.crc_failures > 0
    assert server_stats.crc_failures > 0
    assert client_stats.malformed_dropped == server_stats.malformed_dropped == 0


@pytest.mark.realnet
async def test_s03_realnet_corruption_is_caught_by_the_checksum(chaos: Chaos) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(REALNET_BOUND):
        async with proxied_service(
            [impl], to_server=CORRUPTING, to_client=CORRUPTING, seed=3
        ) as (server, proxy, conn):
            client = chaos.client(conn)
            await run_concurrently(
                range(REALNET_CALLS),
                lambda i: apply_checked(client, ledger, i, size=REALNET_SIZE),
                tasks=20,
            )

            def counted_all() -> bool:
                # Live figures on both sides: a late ack may still cross the proxy meanwhile.
                stats = proxy.statistics()
                return (
                    server.statistics().transport.crc_failures,
                    conn.statistics().transport.crc_failures,
                ) == (stats.to_server.corrupted, stats.to_client.corrupted)

            await eventually(counted_all)
            stats = proxy.statistics()
    assert ledger.returned == set(range(REALNET_CALLS))
    ledger.check_at_most_once(impl.executions)
    assert stats.to_server.corrupted > 0
    assert stats.to_client.corrupted > 0
