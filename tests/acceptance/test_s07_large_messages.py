"""Scenario 7: 1 MiB and 16 MiB messages under 5% loss arrive intact (SHA-256 checked both ways).

Large datagrams are configured, as a deployment on a LAN or loopback would. The message limit
is raised a little above 16 MiB because a call carrying 16 MiB of data is a little larger than
its data (envelope and msgpack framing).
"""

from __future__ import annotations

import random

import pytest
import trio

from rpc.testing import LinkFaults, simulated_service
from rpc.transport.config import TransportConfig
from tests.acceptance.helpers import REALNET_BOUND, proxied_service
from tests.acceptance.service import Chaos, sha256

MiB = 1024 * 1024
LOSSY = LinkFaults(loss=0.05)
CONFIG = TransportConfig(max_datagram_size=60_000, max_message_size=17 * MiB)
SIZES = (1 * MiB, 16 * MiB)
BOUND = 600.0  # virtual seconds


async def echo_intact(client: object, size: int, seed: int) -> None:
    """Send ``size`` random bytes and check both digests and the echoed bytes."""
    data = random.Random(seed).randbytes(size)  # incompressible: the full size goes on the wire
    echo = await client.apply(seed, data)  # type: ignore[attr-defined]
    assert echo.sha256 == sha256(data)  # what the server received
    assert sha256(echo.data) == sha256(data)  # what came back


@pytest.mark.parametrize("size", SIZES, ids=["1MiB", "16MiB"])
async def test_s07_large_messages_survive_loss(
    chaos: Chaos, autojump_clock: trio.testing.MockClock, size: int
) -> None:
    impl = chaos.impl()
    with trio.fail_after(BOUND):
        async with simulated_service(
            [impl], seed=7, faults=LOSSY, config=CONFIG, client_config=CONFIG
        ) as sim:
            await echo_intact(chaos.client(sim.client), size, seed=size)
            client_stats = sim.client.statistics().transport
            server_stats = sim.server.statistics().transport
    net = sim.network.statistics()
    assert impl.executions == {size: 1}
    assert net.dropped_loss > 0  # fragments really were lost both ways...
    assert client_stats.retransmissions > 0  # ...and resent by both sides
    assert server_stats.retransmissions > 0
    assert net.bytes_delivered > 2 * size


@pytest.mark.realnet
async def test_s07_realnet_large_messages_survive_loss(chaos: Chaos) -> None:
    impl = chaos.impl()
    with trio.fail_after(REALNET_BOUND):
        async with proxied_service(
            [impl], to_server=LOSSY, to_client=LOSSY, seed=7, config=CONFIG
        ) as (_, proxy, conn):
            client = chaos.client(conn)
            for size in SIZES:
                await echo_intact(client, size, seed=size)
            stats = proxy.statistics()
            retransmissions = conn.statistics().transport.retransmissions
    assert impl.executions == dict.fromkeys(SIZES, 1)
    assert stats.to_server.dropped_loss > 0
    assert stats.to_client.dropped_loss > 0
    assert retransmissions > 0
