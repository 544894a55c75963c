"""Reordering tolerance: a loss declared too early is detected and the thresholds adapt."""

from __future__ import annotations

from transport_harness import CLIENT, SERVER, Faults, Net

from rpc.transport.config import TransportConfig
from rpc.transport.recovery import (
    DECLARED_LOST_REMEMBERED,
    PACKET_THRESHOLD,
    LossRecovery,
    SentPacket,
)
from rpc.transport.rtt import TIME_THRESHOLD, RttEstimator

CALLS = 1_000
#: Sub-millisecond RTT with 2 ms of jitter on some datagrams: loopback under load.
JITTER = Faults(delay=(0.0001, 0.0002), reorder=0.2, reorder_delay=0.002)


def _ping_pong(net: Net, calls: int) -> None:
    """``calls`` request/reply exchanges, a few in flight at a time."""
    sent = 0
    while sent < calls or len(net.received(CLIENT)) < calls:
        while sent < calls and sent - len(net.received(CLIENT)) < 4:
            net.client.send_message(SERVER, sent.to_bytes(4, "big") * 8, now=net.now)
            sent += 1
        net.flush()
        before = len(net.received(SERVER))
        assert net.step()
        for payload in net.received(SERVER)[before:]:
            net.server.send_message(CLIENT, payload, now=net.now)
    net.run(until=net.now + 5.0)


def test_spurious_losses_are_detected_and_reordering_stops_causing_retransmissions() -> None:
    net = Net.pair(TransportConfig(initial_rtt=0.01), JITTER, seed=8)
    _ping_pong(net, CALLS)
    assert sorted(net.received(SERVER)) == sorted(i.to_bytes(4, "big") * 8 for i in range(CALLS))
    assert net.counts.reordered > 300  # the fault really happened
    assert net.counts.dropped == 0
    client = net.client.statistics()
    server = net.server.statistics()
    spurious = client.spurious_losses + server.spurious_losses
    retransmissions = client.retransmissions + server.retransmissions
    assert spurious > 0  # reordering was mistaken for loss at first...
    assert retransmissions < CALLS // 20  # ...but the window adapted: few spurious resends


def test_a_late_ack_of_a_packet_declared_lost_widens_both_thresholds() -> None:
    rtt = RttEstimator(0.1)
    recovery = LossRecovery(rtt, 1200, 12000, 10**9, 0.005, 0.002, 1.0, first_packet_number=0)
    for pn in range(8):
        recovery.on_packet_sent(SentPacket(pn, 0.0, 1000, None, 0))
    _, lost = recovery.on_ack([(4, 7)], 0.0, now=0.05)
    assert [p.packet_number for p in lost] == [0, 1, 2, 3]  # 7 - kPacketThreshold and below
    assert recovery.packet_threshold == PACKET_THRESHOLD
    # Packet 0 was only late: its acknowledgement arrives after it was declared lost.
    recovery.on_ack([(4, 7), (0, 0)], 0.0, now=0.06)
    assert recovery.spurious_losses == 1
    assert recovery.packet_threshold == 7 - 0 + 1  # its displacement now counts as reordering
    pto_base = rtt.pto_base(0.005, 0.002)
    assert recovery.reorder_window == min(0.06 * TIME_THRESHOLD, pto_base)
    # The same displacement again is no longer a loss.
    for pn in range(8, 16):
        recovery.on_packet_sent(SentPacket(pn, 0.07, 1000, None, 0))
    _, lost = recovery.on_ack([(15, 15)], 0.0, now=0.071)
    assert lost == []


def test_declared_losses_are_remembered_within_a_bound() -> None:
    rtt = RttEstimator(0.1)
    recovery = LossRecovery(rtt, 1200, 12000, 10**9, 0.005, 0.002, 1.0, first_packet_number=0)
    count = DECLARED_LOST_REMEMBERED + 20
    for pn in range(count + 3):
        recovery.on_packet_sent(SentPacket(pn, 0.0, 100, None, 0))
    _, lost = recovery.on_ack([(count + 2, count + 2)], 0.0, now=0.05)
    assert len(lost) == count
    assert len(recovery.declared_lost) == DECLARED_LOST_REMEMBERED
    assert min(recovery.declared_lost) == count - DECLARED_LOST_REMEMBERED  # the newest kept
