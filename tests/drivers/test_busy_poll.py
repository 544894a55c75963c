"""Busy-polling before a blocking wait: when the drivers poll, and how they learn to stop."""

from __future__ import annotations

import math
import socket
from typing import Any

import pytest
import trio
import trio.testing

import rpc
from rpc.drivers._blocking import BlockingDriver
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, HIT_RATE_TO_POLL, PROBE_INTERVAL, BusyPoll
from rpc.errors import InvalidArgument
from rpc.transport.endpoint import Endpoint


def _misses_until_polling_stops(poll: BusyPoll) -> int:
    misses = 0
    while poll.worthwhile():
        poll.record(False)
        misses += 1
        assert misses < 100, "polling never stopped"
    return misses


def test_a_new_wait_polls_and_misses_stop_it_within_a_few_waits() -> None:
    poll = BusyPoll()
    assert poll.budget == DEFAULT_BUSY_POLL
    misses = _misses_until_polling_stops(poll)
    # From a hit rate of 1, each miss keeps 7/8 of it: below one half after six.
    assert misses == 6
    assert poll.hit_rate < HIT_RATE_TO_POLL


def test_after_polling_stops_every_probe_interval_th_wait_polls() -> None:
    poll = BusyPoll()
    _misses_until_polling_stops(poll)
    decisions = []
    for _ in range(3 * PROBE_INTERVAL):
        decisions.append(poll.worthwhile())
        if decisions[-1]:
            poll.record(False)  # the peer is still far: every probe misses
    probes = [i for i, polls in enumerate(decisions) if polls]
    assert len(probes) == 3
    assert probes[1] - probes[0] == probes[2] - probes[1] == PROBE_INTERVAL


def test_probes_that_hit_bring_polling_back() -> None:
    poll = BusyPoll()
    _misses_until_polling_stops(poll)
    probes = 0
    while not poll.worthwhile():
        probes += 1
        assert probes < 10 * PROBE_INTERVAL, "polling never came back"
    poll.record(True)  # the probe found the datagram: the peer is near again
    assert poll.worthwhile()


def test_a_mostly_hitting_poll_goes_on() -> None:
    poll = BusyPoll()
    for i in range(1000):
        assert poll.worthwhile()
        poll.record(i % 3 != 0)  # two in three polls find the datagram in time


def test_a_zero_budget_never_polls_not_even_to_probe() -> None:
    poll = BusyPoll(0)
    assert not any(poll.worthwhile() for _ in range(3 * PROBE_INTERVAL))
    poll.hit_rate = 0.0
    assert not any(poll.worthwhile() for _ in range(3 * PROBE_INTERVAL))


@pytest.mark.parametrize("bad", [-1e-6, math.nan, math.inf, True, "0.0001", None])
def test_a_bad_budget_is_a_typed_error(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="busy_poll"):
        BusyPoll(bad)


# IdleWait, which polls through BusyPoll, has its own tests: tests/drivers/test_idle_wait.py.


# --------------------------------------------------------------------------- BlockingDriver


class _RecordingPoller:
    """Wraps a ``select.poll`` object, recording every timeout (milliseconds)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.timeouts: list[int] = []

    def poll(self, timeout: int) -> Any:
        self.timeouts.append(timeout)
        return self.real.poll(timeout)


@pytest.mark.parametrize(("budget", "blocks"), [(DEFAULT_BUSY_POLL, False), (0, True)])
def test_blocking_driver_polls_before_it_blocks(
    pair: tuple[socket.socket, ...], budget: float, blocks: bool
) -> None:
    a, b = pair
    driver = BlockingDriver(Endpoint(accept_new_peers=True), b, busy_poll=budget)
    poller = _RecordingPoller(driver._poller)
    driver._poller = poller  # type: ignore[assignment]
    a.sendto(b"not a valid datagram", b.getsockname())
    try:
        driver.poll(deadline=driver._clock() + 5.0)
    finally:
        driver.close()
    assert poller.timeouts[0] > 0 if blocks else poller.timeouts == [0]
    assert driver.statistics().datagrams_received == 1


def test_blocking_driver_stops_polling_for_a_peer_that_keeps_it_waiting(
    pair: tuple[socket.socket, ...],
) -> None:
    _, b = pair
    driver = BlockingDriver(Endpoint(accept_new_peers=True), b, busy_poll=0.0002)
    poller = _RecordingPoller(driver._poller)
    driver._poller = poller  # type: ignore[assignment]
    try:
        for _ in range(8):  # nothing ever comes: each wait ends at its 2 ms deadline
            driver.poll(deadline=driver._clock() + 0.002)
        poller.timeouts.clear()
        driver.poll(deadline=driver._clock() + 0.002)
    finally:
        driver.close()
    assert poller.timeouts
    assert 0 not in poller.timeouts


# --------------------------------------------------------------------------- public API


def test_connect_server_and_sync_client_reject_a_bad_budget() -> None:
    async def connect() -> None:
        async with rpc.connect("127.0.0.1", 9, busy_poll=-1.0):
            pass  # pragma: no cover - never gets here

    with pytest.raises(InvalidArgument, match="busy_poll"):
        trio.run(connect)
    with pytest.raises(InvalidArgument, match="busy_poll"):
        rpc.Server([], busy_poll=math.nan)
    with pytest.raises(InvalidArgument, match="busy_poll"):
        rpc.SyncClient("127.0.0.1", 9, busy_poll=-1.0)
