"""Timers alone never starve reading: with a timer always due, datagrams still get read.

The endpoint here has a timer that is always due and a timer round that takes longer than the
drivers' TIMER_GRANULARITY (it moves the clock on), so every wait a driver starts is already
past its deadline: what an endpoint with thousands of due peers looks like to its driver.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio.testing

from drivers.fake_endpoint import FakeEndpoint
from rpc.drivers._blocking import BlockingDriver, bind_udp_socket
from rpc.drivers._io import TIMER_GRANULARITY
from rpc.drivers._trio import TrioDriver
from rpc.testing import SimNetwork

#: Longer than TIMER_GRANULARITY: the next wake-up is due before the round ends.
ROUND_TIME = 2 * TIMER_GRANULARITY


class AlwaysDue(FakeEndpoint):
    """A timer that never goes away, and timer rounds that take ROUND_TIME each."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__(stuck_timer=True)
        self.timers.append(0.0)
        self._advance = advance

    def handle_timer(self, *, now: float) -> None:
        super().handle_timer(now=now)
        self.events.clear()  # no event per round: the test counts rounds itself
        self._advance(ROUND_TIME)


async def test_trio_reads_datagrams_while_a_timer_is_always_due(
    mock_clock: trio.testing.MockClock,
) -> None:
    # mock_clock runs at rate 0: only the endpoint's timer rounds move the time.
    net = SimNetwork(seed=1)
    endpoint = AlwaysDue(mock_clock.jump)
    sock = net.socket()
    driver = TrioDriver(endpoint, sock, lambda event: None)
    sender = net.socket()
    sent_at: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        for burst in range(20):
            for i in range(5):
                sent_at.append(trio.current_time())
                message = b"M" + (burst * 5 + i).to_bytes(4, "big") + b"x"
                sender.try_sendto(message, sock.getsockname())
            await trio.sleep(0.01)  # some 5 timer rounds
        await driver.aclose()
    assert len(endpoint.timer_fires) >= 90  # the timer really kept coming due
    # Every datagram was read and processed (each answered with an ack), within a round or so.
    assert len(endpoint.received_at) == 100 == driver.statistics().datagrams_received
    assert net.statistics().delivered == 200  # 100 datagrams and their 100 acks
    delays = [got - sent for sent, got in zip(sent_at, endpoint.received_at, strict=True)]
    assert max(delays) <= 2 * ROUND_TIME


def test_blocking_poll_reads_datagrams_while_a_timer_is_always_due() -> None:
    now = [1000.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    endpoint = AlwaysDue(advance)
    driver = BlockingDriver(endpoint, bind_udp_socket(), clock=lambda: now[0])
    sender = bind_udp_socket()
    try:
        for i in range(10):  # small datagrams (each alone would be read one per poll)
            sender.sendto(b"M" + i.to_bytes(4, "big") + b"x", driver.address)
        driver.poll(now[0] + 60)  # the timer is due: no wait
        # What was waiting was read before the timer round, and there was one round.
        assert len(endpoint.received_at) == 10 == driver.statistics().datagrams_received
        assert len(endpoint.timer_fires) == 1
        for _ in range(100):  # it stays due, and every poll still reads what came meanwhile
            sender.sendto(b"M" + bytes(4) + b"y", driver.address)
            driver.poll(now[0] + 60)
        assert len(endpoint.received_at) == 110
        assert len(endpoint.timer_fires) == 101
    finally:
        driver.close()
        sender.close()
