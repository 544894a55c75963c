"""Scenario 8: the last datagram of a message is lost again and again (in both directions);
the call still completes within its deadline."""

from __future__ import annotations

from collections.abc import Callable

import trio

import rpc
from rpc.testing import simulated_service
from tests.acceptance.helpers import TapSocket, is_last_fragment
from tests.acceptance.service import Chaos, payload, sha256

#: How many times in a row the tail of each message is lost.
TAIL_LOSSES = 4
SIZE = 10_000  # about nine 1200-byte datagrams
DEADLINE = 10.0
BOUND = 60.0  # virtual seconds


def lose_tail(times: int) -> Callable[[bytes], bool]:
    """A filter that drops the first ``times`` transmissions of a message's last fragment."""
    left = [times]

    def drop(data: bytes) -> bool:
        if left[0] > 0 and is_last_fragment(data):
            left[0] -= 1
            return True
        return False

    return drop


async def test_s08_tail_lost_repeatedly_call_completes_within_deadline(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=8) as sim:
            tap = TapSocket(
                sim.network.socket(),
                drop_outgoing=lose_tail(TAIL_LOSSES),
                drop_incoming=lose_tail(TAIL_LOSSES),
            )
            async with rpc.connect(*sim.address, socket=tap) as conn:
                data = payload(1, SIZE)
                started = trio.current_time()
                echo = await chaos.client(conn).apply(1, data, timeout=DEADLINE)
                took = trio.current_time() - started
                probes = conn.statistics().transport.probes_sent
    assert echo.data == data
    assert echo.sha256 == sha256(data)
    assert impl.executions == {1: 1}
    assert tap.dropped_outgoing == TAIL_LOSSES  # the call's tail was lost each time...
    assert tap.dropped_incoming == TAIL_LOSSES  # ...and so was the reply's
    assert probes > 0  # recovered by probe timeouts, not by luck
    assert took < DEADLINE  # virtual time: a logical bound, not a speed measurement
