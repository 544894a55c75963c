"""Oneway calls return once the server has the call: the server acknowledges a oneway CALL at
once (no reply will carry the ACK, so waiting out the ACK delay would only delay the caller),
and both clients return as soon as that ACK arrives."""

from __future__ import annotations

import pytest
import trio

import rpc
from rpc.testing import LinkFaults
from rpc.transport.config import TransportConfig
from tests.runtime.harness import LabImpl, sim_lab
from tests.runtime.lab_service import LabClient, LabSyncClient

#: A server ACK delay far longer than any round trip here: a oneway call that waited for it
#: would stand out (on the simulated clock) or miss its deadline (on real sockets).
SLOW_ACKS = TransportConfig(max_ack_delay=30.0)
ONE_WAY_DELAY = 0.01  # seconds each way on the simulated network


async def test_async_oneway_returns_within_a_round_trip(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl, faults=LinkFaults(delay=ONE_WAY_DELAY), config=SLOW_ACKS) as (
        _, server, client,
    ):
        lab = LabClient(client)
        await lab.bump("warm-up", timeout=5.0)
        took = []
        for i in range(5):
            started = trio.current_time()
            await lab.record(f"event {i}", timeout=60.0)
            took.append(trio.current_time() - started)
        await trio.sleep(0.1)
        acks_sent = server.statistics().transport.acks_sent
    rtt = 2 * ONE_WAY_DELAY
    assert max(took) < 2 * rtt  # one round trip, not the server's 30 s ACK delay
    assert impl.records == [f"event {i}" for i in range(5)]
    assert acks_sent >= 5  # each oneway CALL got its own, immediate ACK


@pytest.mark.realnet
async def test_sync_oneway_returns_on_the_ack_not_the_ack_delay() -> None:
    impl = LabImpl()

    def script(port: int) -> tuple[list[str], int]:
        with rpc.SyncClient("127.0.0.1", port) as client:
            lab = LabSyncClient(client)
            lab.bump("warm-up", timeout=10.0)
            for i in range(3):
                # Were the ACK held back, the call would wait for a probe timeout and resend
                # the CALL to provoke it (the duplicate is acknowledged at once).
                lab.record(f"event {i}", timeout=5.0)
            stats = client.statistics()
            return list(stats.calls_failed), stats.transport.retransmissions

    async with rpc.Server([impl], config=SLOW_ACKS) as server:
        failed, retransmissions = await trio.to_thread.run_sync(script, server.address[1])
        with trio.fail_after(10.0):
            while len(impl.records) < 3:
                await trio.sleep(0.01)
    assert failed == []
    assert retransmissions == 0  # each ACK came at once: nothing had to be resent
    assert impl.records == [f"event {i}" for i in range(3)]
