"""Delayed, immediate and piggy-backed acknowledgements; the received-ranges tracker."""

from __future__ import annotations

import pytest
from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.transport import wire
from rpc.transport.acks import AckTracker
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageAcked, MessageReceived

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)


def pair() -> tuple[Endpoint, Endpoint]:
    return (
        Endpoint(CONFIG, accept_new_peers=False, epoch=1),
        Endpoint(CONFIG, accept_new_peers=True, epoch=2),
    )


def acquainted(now: float) -> tuple[Endpoint, Endpoint]:
    """A client and server that exchanged one call and reply (the server validated it)."""
    client, server = pair()
    client.send_message(SERVER, b"hi", now=now)
    transfer(client, CLIENT, server, now=now)
    server.send_message(CLIENT, b"hello", now=now)
    transfer(server, SERVER, client, now=now)
    client.handle_timer(now=now + 0.005)
    transfer(client, CLIENT, server, now=now + 0.005)  # the client's ACK echoes our epoch
    drain(client)
    drain(server)
    return client, server


def decoded(datagrams: list[tuple[bytes, tuple[str, int]]]) -> list[wire.Datagram]:
    return [wire.decode_datagram_untrusted(data) for data, _ in datagrams]


def test_a_lone_message_is_acknowledged_after_the_ack_delay() -> None:
    client, server = pair()
    client.send_message(SERVER, b"call", now=1.0)
    transfer(client, CLIENT, server, now=1.0)
    assert server.datagrams_to_send(now=1.0) == []
    assert server.datagrams_to_send(now=1.004) == []
    assert server.get_timer() == pytest.approx(1.005)
    server.handle_timer(now=1.005)
    (ack,) = decoded(server.datagrams_to_send(now=1.005))
    assert ack.flags == wire.FLAG_ACK  # a pure ACK: no data, not ack-eliciting
    assert ack.ack_delay_us == 5000
    assert server.get_timer() is None


def test_the_reply_carries_the_ack_of_the_call_and_no_extra_datagram_is_sent() -> None:
    client, server = pair()
    call_id = client.send_message(SERVER, b"call", now=1.0)
    transfer(client, CLIENT, server, now=1.0)
    assert drain(server) == [MessageReceived(CLIENT, b"call", 1)]
    server.send_message(CLIENT, b"reply", now=1.002)
    sent = server.datagrams_to_send(now=1.002)
    (reply,) = decoded(sent)
    assert reply.flags == wire.FLAG_ACK | wire.FLAG_DATA
    assert bytes(reply.fragment) == b"reply"
    client.receive_datagram(sent[0][0], SERVER, now=1.003)
    assert drain(client) == [MessageAcked(SERVER, call_id), MessageReceived(SERVER, b"reply", 2)]
    # The server owes no separate ACK: until its reply's probe timeout, it sends nothing.
    timer = server.get_timer()
    assert timer is not None
    assert timer > 1.1
    assert server.datagrams_to_send(now=1.05) == []
    assert server.statistics().acks_sent == 0
    assert server.statistics().datagrams_sent == 1


def test_a_gap_is_acknowledged_at_once() -> None:
    client, server = acquainted(now=0.0)
    for k in range(3):
        client.send_message(SERVER, b"m%d" % k, now=1.0)
    transfer(client, CLIENT, server, now=1.0, drop=frozenset({1}))
    # Packet 0 arrived in order (delayed ack); packet 2 arrived after a gap: ACK right now.
    (ack,) = decoded(server.datagrams_to_send(now=1.0))
    assert ack.flags == wire.FLAG_ACK
    (low0, high0), (_, high1) = ack.ack_ranges
    assert low0 == high0 == high1 + 2


def test_every_second_ack_eliciting_datagram_is_acknowledged_at_once() -> None:
    client, server = pair()
    client.send_message(SERVER, b"a", now=1.0)
    client.send_message(SERVER, b"b", now=1.0)
    transfer(client, CLIENT, server, now=1.0)
    (ack,) = decoded(server.datagrams_to_send(now=1.0))
    assert ack.flags == wire.FLAG_ACK
    assert len(ack.ack_ranges) == 1


def test_a_duplicate_datagram_is_counted_and_acknowledged_again() -> None:
    client, server = pair()
    client.send_message(SERVER, b"once", now=1.0)
    ((data, _),) = client.datagrams_to_send(now=1.0)
    server.receive_datagram(data, CLIENT, now=1.0)
    server.handle_timer(now=1.005)
    assert len(server.datagrams_to_send(now=1.005)) == 1  # the ACK (lost, say)
    server.receive_datagram(data, CLIENT, now=1.2)
    assert drain(server) == [MessageReceived(CLIENT, b"once", 1)]  # delivered once only
    assert server.statistics().duplicate_datagrams == 1
    server.handle_timer(now=1.205)
    assert len(server.datagrams_to_send(now=1.205)) == 1  # acknowledged again


def test_tracker_merges_ranges_in_any_arrival_order() -> None:
    tracker = AckTracker(max_ranges=8, max_ack_delay=0.005, threshold=2)
    for pn in [5, 7, 6, 1, 2, 9, 3, 0]:
        assert not tracker.is_duplicate(pn)
        tracker.record(pn, ack_eliciting=True, now=0.0)
    assert tracker.ack_ranges() == [(9, 9), (5, 7), (0, 3)]
    assert tracker.is_duplicate(6)
    assert tracker.is_duplicate(0)
    assert not tracker.is_duplicate(4)
    tracker.record(4, ack_eliciting=True, now=0.0)
    tracker.record(8, ack_eliciting=False, now=0.0)
    assert tracker.ack_ranges() == [(0, 9)]


def test_tracker_keeps_a_bounded_number_of_ranges() -> None:
    tracker = AckTracker(max_ranges=3, max_ack_delay=0.005, threshold=2)
    for pn in range(0, 20, 2):  # ten separate ranges
        tracker.record(pn, ack_eliciting=True, now=0.0)
    assert tracker.ack_ranges() == [(18, 18), (16, 16), (14, 14)]
    # Ranges below what is remembered are forgotten: treated as already seen.
    assert tracker.is_duplicate(12)
    assert tracker.is_duplicate(0)
    assert not tracker.is_duplicate(13)
    assert not tracker.is_duplicate(15)


def test_non_eliciting_packets_owe_no_ack() -> None:
    tracker = AckTracker(max_ranges=3, max_ack_delay=0.005, threshold=2)
    tracker.record(0, ack_eliciting=False, now=0.0)
    assert not tracker.ack_owed
    assert tracker.ack_deadline is None
    tracker.record(1, ack_eliciting=True, now=0.5)
    assert tracker.ack_deadline == pytest.approx(0.505)
