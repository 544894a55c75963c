"""Loss detection (packet and time thresholds), NewReno windows, and send-buffer backpressure."""

from __future__ import annotations

import random

import pytest
from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.errors import MessageTooLarge, SendBufferFull
from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageAcked, MessageReceived, SendCapacityAvailable
from rpc.transport.recovery import LossRecovery, SentPacket
from rpc.transport.rtt import RttEstimator

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)


def pair(config: TransportConfig = CONFIG) -> tuple[Endpoint, Endpoint]:
    return (
        Endpoint(config, accept_new_peers=False, epoch=1),
        Endpoint(config, accept_new_peers=True, epoch=2),
    )


def test_packet_threshold_loss_is_retransmitted_before_any_timeout() -> None:
    client, server = pair()
    for k in range(5):
        client.send_message(SERVER, b"m%d" % k, now=0.0)
    sent = transfer(client, CLIENT, server, now=0.0, drop=frozenset({0}))
    assert len(sent) == 5
    transfer(server, SERVER, client, now=0.020)  # immediate ACK of 1..4 (gap at 0)
    # Packet 0 is 4 below the largest acknowledged (>= kPacketThreshold 3): lost now.
    (resent,) = client.datagrams_to_send(now=0.020)
    original = wire.decode_datagram_untrusted(sent[0])
    retransmission = wire.decode_datagram_untrusted(resent[0])
    assert retransmission.message_id == original.message_id
    assert retransmission.packet_number > wire.decode_datagram_untrusted(sent[4]).packet_number
    stats = client.statistics()
    assert (stats.fast_retransmits, stats.lost_packets, stats.retransmissions) == (1, 1, 1)
    assert stats.probes_sent == 0
    server.receive_datagram(resent[0], CLIENT, now=0.021)
    received = [e.payload for e in drain(server) if isinstance(e, MessageReceived)]
    assert sorted(received) == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_time_threshold_loss_fires_at_nine_eighths_of_the_rtt() -> None:
    client, server = pair()
    client.send_message(SERVER, b"a", now=0.0)
    client.send_message(SERVER, b"b", now=0.0)
    transfer(client, CLIENT, server, now=0.0, drop=frozenset({0}))
    transfer(server, SERVER, client, now=0.020)  # ACK of packet 1 only: first RTT sample 20 ms
    assert client.datagrams_to_send(now=0.020) == []  # one packet of reordering is tolerated
    assert client.get_timer() == pytest.approx(9 / 8 * 0.020)  # sent at 0, lost at 22.5 ms
    client.handle_timer(now=0.0225)
    (resent,) = client.datagrams_to_send(now=0.0225)
    assert bytes(wire.decode_datagram_untrusted(resent[0]).fragment) == b"a"
    assert client.statistics().lost_packets == 1
    assert client.statistics().fast_retransmits == 0


def test_congestion_window_limits_what_is_in_flight_and_grows_in_slow_start() -> None:
    client, server = pair()
    for _ in range(20):
        client.send_message(SERVER, b"x" * 1000, now=0.0)  # 1057-byte datagrams
    first = client.datagrams_to_send(now=0.0)
    # Initial window 10 * 1200 = 12000 bytes; a datagram goes out while one more full-size
    # datagram would still fit: 11 * 1057 = 11627 bytes in flight.
    assert len(first) == 11
    stats = client.peer_statistics(SERVER)
    assert stats is not None
    assert stats.bytes_in_flight == 11 * 1057
    assert client.datagrams_to_send(now=0.001) == []
    for data, _ in first:
        server.receive_datagram(data, CLIENT, now=0.010)
    transfer(server, SERVER, client, now=0.020)
    stats = client.peer_statistics(SERVER)
    assert stats is not None
    assert stats.congestion_window == 12000 + 11 * 1057  # slow start: + bytes acknowledged
    assert len(client.datagrams_to_send(now=0.020)) == 9  # the rest fits now


def test_loss_halves_the_window_once_per_recovery_period() -> None:
    rtt = RttEstimator(0.1)
    recovery = LossRecovery(rtt, 1200, 12000, 10**9, 0.005, 0.002, 1.0, first_packet_number=0)
    for pn in range(8):
        recovery.on_packet_sent(SentPacket(pn, 0.0, 1000, None, 0))
    acked, lost = recovery.on_ack([(4, 7)], 0.0, now=0.05)
    assert [p.packet_number for p in lost] == [0, 1, 2, 3]  # all <= 7 - kPacketThreshold
    assert len(acked) == 4
    # Slow start first adds the 4000 bytes acknowledged, then the loss halves: 16000 / 2.
    assert recovery.congestion_window == 8000
    assert recovery.ssthresh == 8000
    assert recovery.bytes_in_flight == 0
    for pn in range(8, 12):  # sent after recovery started: their loss halves again
        recovery.on_packet_sent(SentPacket(pn, 0.06, 1000, None, 0))
    acked, lost = recovery.on_ack([(11, 11)], 0.0, now=0.1)
    assert [p.packet_number for p in lost] == [8]  # 9 and 10 are within the time threshold
    # Congestion avoidance adds 1200 * 1000 // 8000 = 150, then the loss halves 8150.
    assert recovery.congestion_window == 4075
    # Never below the minimum window of two datagrams (RFC 9002 §7.2).
    for pn in range(12, 20):
        recovery.on_packet_sent(SentPacket(pn, 0.2, 1000, None, 0))
    recovery.on_ack([(19, 19)], 0.0, now=0.3)
    assert recovery.congestion_window == 2400


def test_send_buffer_full_raises_and_capacity_is_announced_after_acks() -> None:
    client, server = pair(TransportConfig(initial_rtt=0.1, send_buffer_size=5000))
    noise = random.Random(5).randbytes(3000)  # incompressible
    first = client.send_message(SERVER, noise, now=0.0)
    assert client.send_capacity(SERVER) == 2000
    with pytest.raises(SendBufferFull):
        client.send_message(SERVER, noise, now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    transfer(server, SERVER, client, now=0.01)
    assert drain(client) == [MessageAcked(SERVER, first), SendCapacityAvailable(SERVER)]
    assert client.send_capacity(SERVER) == 5000
    client.send_message(SERVER, noise, now=0.02)  # accepted again


def test_a_message_above_the_buffer_is_accepted_when_the_buffer_is_empty() -> None:
    client, _ = pair(TransportConfig(send_buffer_size=1000, compression_threshold=10**6))
    client.send_message(SERVER, b"z" * 5000, now=0.0)
    with pytest.raises(SendBufferFull):
        client.send_message(SERVER, b"z", now=0.0)


def test_a_message_above_the_maximum_size_is_refused() -> None:
    client, _ = pair(TransportConfig(max_message_size=1000))
    with pytest.raises(MessageTooLarge):
        client.send_message(SERVER, b"z" * 1001, now=0.0)
    assert client.statistics().messages_sent == 0
