"""Scenario 14: hundreds of clients call one server under 10% loss: every call completes, at
most once; after the clients leave, the server's per-client state (transport peers, reply-cache
sessions and entries) shrinks back instead of growing without bound."""

from __future__ import annotations

import trio

from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.helpers import Ledger, apply_checked
from tests.acceptance.service import Chaos

CLIENTS = 300
CALLS_EACH = 3
BOUND = 3_600.0  # virtual seconds
#: Past every expiry the server has: reply-cache session TTL (300 s), peer idle time (60 s).
IDLE = 400.0


async def test_s14_hundreds_of_clients_then_state_shrinks(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=14, faults=LinkFaults(loss=0.1)) as sim:

            async def one_client(n: int) -> None:
                async with sim.connect() as conn:
                    client = chaos.client(conn)
                    for k in range(CALLS_EACH):
                        await apply_checked(client, ledger, n * CALLS_EACH + k)

            async with trio.open_nursery() as nursery:
                for n in range(CLIENTS):
                    nursery.start_soon(one_client, n)
            busy = sim.server.statistics()
            await trio.sleep(IDLE)  # every client has left; nothing arrives any more
            # The server sweeps idle state when new work arrives: one newcomer calls.
            async with sim.connect() as conn:
                await apply_checked(chaos.client(conn), ledger, CLIENTS * CALLS_EACH)
                idle = sim.server.statistics()
    assert len(ledger.returned) == CLIENTS * CALLS_EACH + 1
    assert not ledger.failed
    ledger.check_at_most_once(impl.executions)
    assert sim.network.statistics().dropped_loss > 0
    # The state really grew (a client that closes cleanly frees its transport peer at once)...
    assert busy.transport.peers + busy.transport.peers_closed >= CLIENTS
    assert busy.transport.peers_closed > 0
    # (a reply-cache session too, unless the CLOSE was lost)
    assert busy.reply_cache.sessions + busy.reply_cache.closed_sessions >= CLIENTS
    assert idle.transport.peers <= 1  # ...and shrank back to the newcomer
    assert idle.reply_cache.sessions <= 1
    assert idle.reply_cache.entries <= 1
    assert idle.reply_cache.bytes <= busy.reply_cache.bytes // CLIENTS + 1024
