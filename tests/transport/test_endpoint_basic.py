"""First end-to-end checks of the sans-I/O endpoint over the virtual network."""

from __future__ import annotations

import random

from transport_harness import CLIENT, SERVER, Faults, Net

from rpc.transport.config import TransportConfig
from rpc.transport.events import MessageAcked, MessageReceived


def test_small_message_is_one_datagram_and_is_delivered_and_acked() -> None:
    net = Net.pair()
    message_id = net.client.send_message(SERVER, b"hello", now=0.0)
    assert net.flush() == 1
    net.run(until=1.0)
    assert net.events[SERVER] == [MessageReceived(CLIENT, b"hello", net.client.epoch)]
    assert net.events[CLIENT] == [MessageAcked(SERVER, message_id)]


def test_large_message_is_fragmented_and_reassembled() -> None:
    payload = random.Random(1).randbytes(100_000)  # incompressible
    net = Net.pair()
    net.client.send_message(SERVER, payload, now=0.0)
    net.flush()
    net.run(until=5.0)
    assert net.received(SERVER) == [payload]
    stats = net.client.statistics()
    assert stats.datagrams_sent >= 100_000 // 1200
    assert stats.messages_acked == 1


def test_thousands_of_messages_survive_loss_duplication_reordering_and_corruption() -> None:
    rng = random.Random(7)
    faults = Faults(loss=0.1, duplicate=0.05, reorder=0.1, corrupt=0.02, delay=(0.001, 0.003))
    net = Net.pair(TransportConfig(initial_rtt=0.01), faults, seed=7)
    net.client.send_message(SERVER, b"first", now=0.0)  # the server learns the client first
    net.flush()
    net.run(until=1.0)
    expected: dict[tuple[str, int], list[bytes]] = {CLIENT: [], SERVER: [b"first"]}
    for _ in range(2000):
        payload = rng.randbytes(rng.choice([10, 200, 1500, 5000]))
        src, dst = (net.client, SERVER) if rng.random() < 0.5 else (net.server, CLIENT)
        src.send_message(dst, payload, now=net.now)
        expected[dst].append(payload)
        net.flush()
        net.step()
    net.run(until=net.now + 60.0)
    for addr in (CLIENT, SERVER):
        assert sorted(net.received(addr)) == sorted(expected[addr])
    assert len(net.acked(CLIENT)) + len(net.acked(SERVER)) == 2001
    c = net.counts
    assert c.dropped > 100
    assert c.duplicated > 50
    assert c.reordered > 100
    assert c.corrupted > 20
    stats = [net.client.statistics(), net.server.statistics()]
    assert sum(s.crc_failures for s in stats) > 0
    assert sum(s.retransmissions for s in stats) > 0
    assert sum(s.duplicate_datagrams + s.duplicate_messages for s in stats) > 0
