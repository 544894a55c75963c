"""Retransmission times, exponential backoff with its cap, and liveness, to the exact instant."""

from __future__ import annotations

import pytest
from transport_harness import SERVER, drain

from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import PeerUnreachable

CONFIG = TransportConfig(
    initial_rtt=0.1, max_ack_delay=0.005, min_pto=0.002, max_pto=2.0, peer_timeout=5.0
)


def test_unanswered_message_is_resent_with_exponential_backoff_then_reported() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False)
    message_id = client.send_message(SERVER, b"hello", now=0.0)
    first = client.datagrams_to_send(now=0.0)
    assert len(first) == 1
    # PTO = 0.1 + 4 * 0.05 + 0.005 = 0.305; then doubled from each probe, capped at 2 s.
    expected = [0.305, 0.305 + 0.61, 0.915 + 1.22, 2.135 + 2.0, 4.135 + 2.0]
    sent_at = []
    for deadline in expected:
        timer = client.get_timer()
        assert timer is not None
        if timer < deadline - 1e-9:
            break  # the liveness deadline comes first
        assert timer == pytest.approx(deadline)
        assert client.datagrams_to_send(now=timer - 0.001) == []  # nothing early
        client.handle_timer(now=timer)
        probes = client.datagrams_to_send(now=timer)
        assert len(probes) == 1
        probe = wire.decode_datagram_untrusted(probes[0][0])
        assert probe.message_id == message_id
        assert bytes(probe.fragment) == b"hello"
        sent_at.append((timer, probe.packet_number))
    assert [t for t, _ in sent_at] == pytest.approx(expected[:4])
    numbers = [pn for _, pn in sent_at]
    assert numbers == sorted(set(numbers))  # every retransmission has a new packet number
    assert wire.decode_datagram_untrusted(first[0][0]).packet_number < numbers[0]
    # No acknowledgement for peer_timeout (5 s) since sending started: unreachable at 5.0.
    assert client.get_timer() == pytest.approx(5.0)
    client.handle_timer(now=5.0)
    # Never heard from, but not refused either: silence proves nothing about delivery.
    assert drain(client) == [PeerUnreachable(SERVER, (message_id,), never_heard=True)]
    assert client.datagrams_to_send(now=5.0) == []
    assert client.get_timer() is None  # no keep-alives once nothing is outstanding
    stats = client.statistics()
    assert stats.probes_sent == 4
    assert stats.retransmissions == 4
    assert stats.peers_unreachable == 1


def test_an_idle_endpoint_has_no_timer_and_sends_nothing() -> None:
    endpoint = Endpoint(CONFIG, accept_new_peers=True)
    assert endpoint.get_timer() is None
    assert endpoint.datagrams_to_send(now=10.0) == []
    endpoint.handle_timer(now=10.0)
    assert endpoint.next_event() is None


def test_a_deadline_that_moves_later_fires_at_the_new_time_only() -> None:
    """Each message sent re-arms the retransmission timer later: the heap entry left at the
    earlier deadline does not fire early, whether get_timer or handle_timer meets it first."""
    client = Endpoint(CONFIG, accept_new_peers=False)
    for step in range(50):
        now = step * 0.01
        client.send_message(SERVER, b"x", now=now)
        assert len(client.datagrams_to_send(now=now)) == 1
        if step % 2:  # (get_timer moves a superseded entry itself; on even steps handle_timer)
            assert client.get_timer() == pytest.approx(now + 0.305)  # PTO from the latest send
        # The old deadline (now + 0.295 from the previous send) is not run early.
        client.handle_timer(now=now + 0.3)
        assert client.datagrams_to_send(now=now + 0.3) == []
    assert client.statistics().probes_sent == 0
    due = client.get_timer()
    assert due is not None
    client.handle_timer(now=due)
    assert len(client.datagrams_to_send(now=due)) == 2  # the probes (RFC 9002 §6.2.4), when due
    assert client.statistics().probes_sent == 2

