"""Scenario 17: a reply the server gave up on is recovered by the caller's probe.

The path from the server to the client fails while a call runs, for longer than the server's
``peer_timeout``: the server abandons its reply (it cannot know whether the client is gone).
The client, more patient, keeps probing; once the path heals its probe finds the reply in the
server's reply cache, the server sends it again, and the call succeeds, executed once."""

from __future__ import annotations

import trio

from rpc.testing import LinkFaults, simulated_service
from rpc.transport.config import TransportConfig
from tests.acceptance.service import Chaos

SERVER_CONFIG = TransportConfig(peer_timeout=2.0)
CLIENT_CONFIG = TransportConfig(peer_timeout=8.0)
OUTAGE = 4.0  # seconds without server-to-client traffic: twice the server's peer_timeout
BOUND = 60.0  # virtual seconds


async def test_s17_probe_recovers_an_abandoned_reply(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    with trio.fail_after(BOUND):
        async with simulated_service(
            [impl], seed=17, config=SERVER_CONFIG, client_config=CLIENT_CONFIG
        ) as sim:
            client = chaos.client(sim.client)
            down = LinkFaults(loss=1.0)

            async def outage() -> None:
                await impl.any_started.wait()
                sim.network.set_faults(sim.address, sim.client.local_address, down)
                await trio.sleep(OUTAGE)
                sim.network.set_faults(sim.address, sim.client.local_address, LinkFaults())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(outage)
                assert await client.slow(7, 0.5) == 7  # no deadline: it waits for the reply
            server_stats = sim.server.statistics()
            client_stats = sim.client.statistics()
    assert server_stats.transport.peers_unreachable == 1  # the server did give up the reply
    assert client_stats.probes_sent >= 1
    assert client_stats.calls_failed == {}
    assert impl.executions == {7: 1}
