"""Scenario 15: every call ends. A server that crashes while a call runs (no reply, no CLOSE)
fails the call within ``peer_timeout`` even with no deadline, while a handler that runs for
several ``peer_timeout`` on a live server keeps its caller waiting and then succeeds: the
client probes the server about calls that were delivered long ago (Birrell and Nelson)."""

from __future__ import annotations

import trio

import rpc
from rpc.testing import LinkFaults, simulated_service
from rpc.transport.config import TransportConfig
from tests.acceptance.service import Chaos

PEER_TIMEOUT = 2.0
CONFIG = TransportConfig(peer_timeout=PEER_TIMEOUT)
BOUND = 120.0  # virtual seconds


async def test_s15_long_handler_on_a_live_server_succeeds(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    lossy = LinkFaults(loss=0.05)  # probes and their ACKs get lost too: retransmissions cover it
    with trio.fail_after(BOUND):
        async with simulated_service(
            [impl], seed=15, faults=lossy, config=CONFIG, client_config=CONFIG
        ) as sim:
            client = chaos.client(sim.client)
            started = trio.current_time()
            assert await client.slow(1, 3 * PEER_TIMEOUT) == 1  # no timeout at all
            took = trio.current_time() - started
            probes = sim.client.statistics().probes_sent
            assert sim.network.statistics().dropped_loss > 0
    assert 3 * PEER_TIMEOUT <= took < 3 * PEER_TIMEOUT + 1.0
    assert probes >= 4  # a tick every peer_timeout / 4 while the call waited
    assert impl.executions == {1: 1}


async def test_s15_crashed_server_fails_a_call_without_deadline(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    errors: list[rpc.RpcError] = []
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=15, config=CONFIG, client_config=CONFIG) as sim:
            client = chaos.client(sim.client)

            async def call_without_deadline() -> None:
                try:
                    await client.slow(1, 1000.0)
                except rpc.RpcError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call_without_deadline)
                await impl.any_started.wait()
                await trio.sleep(5 * PEER_TIMEOUT)  # long after the CALL was acknowledged
                await sim.kill_server()  # a crash: no reply, no CLOSE
                crashed = trio.current_time()
            ended = trio.current_time()
            assert sim.network.statistics().dropped_unreachable > 0  # its probes reached nobody
            await sim.start_server([chaos.impl()])  # so that the block ends normally
    (error,) = errors
    assert isinstance(error, rpc.PeerUnreachable)
    assert error.outcome is rpc.CallOutcome.UNKNOWN  # it was delivered: it may have run
    assert not error.safe_to_retry
    assert ended - crashed <= PEER_TIMEOUT + 1.0
    assert impl.started == {1: 1}
