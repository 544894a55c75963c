"""Thousands of messages over a seeded faulty virtual network: each delivered exactly once,
intact, and acknowledged -- and each test checks that its faults really happened."""

from __future__ import annotations

import random

import pytest
from transport_harness import CLIENT, SERVER, Faults, Net

from rpc.errors import SendBufferFull
from rpc.transport.config import TransportConfig
from rpc.transport.events import PeerUnreachable

CONFIG = TransportConfig(initial_rtt=0.01)
SIZES = [8, 100, 700, 1500, 4000]


def run_traffic(
    net: Net, rng: random.Random, count: int, sizes: list[int]
) -> dict[str, list[bytes]]:
    """Send ``count`` messages in random directions, then let the network settle."""
    net.client.send_message(SERVER, b"hello", now=net.now)  # the server learns the client
    expected: dict[str, list[bytes]] = {"server": [b"hello"], "client": []}
    sent = 1
    while sent <= count:
        payload = rng.randbytes(rng.choice(sizes))
        to_server = rng.random() < 0.5
        src, dst = (net.client, SERVER) if to_server else (net.server, CLIENT)
        try:
            src.send_message(dst, payload, now=net.now)
        except SendBufferFull:
            net.step()
            continue
        expected["server" if to_server else "client"].append(payload)
        sent += 1
        net.flush()
        net.step()
    net.run(until=net.now + 120.0)
    return expected


def check_delivery(net: Net, expected: dict[str, list[bytes]]) -> None:
    assert sorted(net.received(SERVER)) == sorted(expected["server"])
    assert sorted(net.received(CLIENT)) == sorted(expected["client"])
    total = len(expected["server"]) + len(expected["client"])
    assert len(net.acked(CLIENT)) + len(net.acked(SERVER)) == total
    unreachable = [e for ev in net.events.values() for e in ev if isinstance(e, PeerUnreachable)]
    assert unreachable == []


@pytest.mark.parametrize("seed", [1, 2])
def test_loss_duplication_reordering_and_corruption(seed: int) -> None:
    faults = Faults(loss=0.1, duplicate=0.05, reorder=0.1, corrupt=0.02, delay=(0.001, 0.003))
    net = Net.pair(CONFIG, faults, seed=seed)
    expected = run_traffic(net, random.Random(seed), 1500, SIZES)
    check_delivery(net, expected)
    c = net.counts
    assert c.dropped > 0.07 * c.sent
    assert c.duplicated > 0.03 * c.sent
    assert c.reordered > 0.07 * c.sent
    assert c.corrupted > 0.01 * c.sent
    stats = [net.client.statistics(), net.server.statistics()]
    assert sum(s.crc_failures for s in stats) > 0
    assert sum(s.retransmissions for s in stats) > 0
    assert sum(s.fast_retransmits for s in stats) > 0
    assert sum(s.duplicate_datagrams for s in stats) > 0


def test_heavy_loss_with_large_messages() -> None:
    faults = Faults(loss=0.3, reorder=0.2, delay=(0.001, 0.005))
    net = Net.pair(CONFIG, faults, seed=5)
    expected = run_traffic(net, random.Random(5), 300, [5000, 20000, 60000])
    check_delivery(net, expected)
    assert net.counts.dropped > 0.25 * net.counts.sent
    assert net.client.statistics().lost_packets > 0


def test_blackhole_shorter_than_the_peer_timeout_is_survived() -> None:
    net = Net.pair(CONFIG, Faults(loss=0.02, delay=(0.001, 0.002)), seed=3)
    rng = random.Random(3)
    first = run_traffic(net, rng, 200, SIZES)
    net.blackhole = True
    lost_before = net.counts.dropped
    for _ in range(50):
        net.client.send_message(SERVER, b"during the outage", now=net.now)
        first["server"].append(b"during the outage")
    net.flush()
    net.run(until=net.now + 4.0)  # 4 s of silence: probes back off, nobody gives up
    assert net.counts.dropped > lost_before + 20
    net.blackhole = False
    net.run(until=net.now + 60.0)
    check_delivery(net, first)
    assert net.client.statistics().probes_sent > 0


def test_permanent_blackhole_is_reported_within_the_peer_timeout() -> None:
    config = TransportConfig(initial_rtt=0.01, peer_timeout=3.0)
    net = Net.pair(config, Faults(), seed=4)
    net.client.send_message(SERVER, b"warm up", now=0.0)
    net.flush()
    net.run(until=1.0)
    net.blackhole = True
    start = net.now
    ids = [net.client.send_message(SERVER, b"into the void", now=net.now) for _ in range(3)]
    net.flush()
    net.run(until=start + 10.0)
    unreachable = [e for e in net.events[CLIENT] if isinstance(e, PeerUnreachable)]
    assert unreachable == [PeerUnreachable(SERVER, tuple(ids))]
    assert net.now - start == pytest.approx(3.0, abs=0.01)  # then nothing is left to do
    assert net.client.get_timer() is None
