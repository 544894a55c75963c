"""Scenario 11: a handler slower than many retransmission timeouts (and than the peer liveness
timeout) runs once, and its reply is delivered."""

from __future__ import annotations

import trio

from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.service import Chaos

SLOW = 60.0  # seconds: far beyond the probe timeout, and beyond peer_timeout (10 s)
BOUND = 300.0  # virtual seconds


async def test_s11_slow_handler_runs_once_and_replies(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=11, faults=LinkFaults(loss=0.1)) as sim:
            client = chaos.client(sim.client)
            answers: list[int] = []

            async def slow_call(i: int) -> None:
                answers.append(await client.slow(i, SLOW))

            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(slow_call, i)
            pto = sim.client._endpoint.peer_statistics(sim.address)
    assert sorted(answers) == list(range(5))
    assert impl.started == impl.executions == dict.fromkeys(range(5), 1)
    assert sim.network.statistics().dropped_loss > 0  # and some datagrams were lost meanwhile
    assert pto is not None
    assert 100 * pto.pto < SLOW  # the handler outlasted a hundred probe timeouts
