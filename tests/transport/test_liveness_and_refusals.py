"""What the transport tells its owner about a peer that went away, to the exact instant: a
liveness probe's silence counts from the last acknowledgement, an ICMP refusal says which
messages never arrived, a drained CLOSE and an epoch notice say what the peer never saw, and
an owner that knows no reply will carry an ACK can have it sent at once."""

from __future__ import annotations

import pytest
from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.errors import BadDatagram
from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageAcked, MessageReceived, PeerClosed, PeerUnreachable

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.05, peer_timeout=5.0)
CLIENT_EPOCH, SERVER_EPOCH = 0xC1, 0x51


def pair() -> tuple[Endpoint, Endpoint]:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=CLIENT_EPOCH)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=SERVER_EPOCH)
    return client, server


def delivered(client: Endpoint, server: Endpoint, payload: bytes, now: float) -> int:
    """Send ``payload`` and have it acknowledged at ``now``; returns its message id."""
    message_id = client.send_message(SERVER, payload, now=now)
    transfer(client, CLIENT, server, now=now)
    server.acknowledge_now(CLIENT, now=now)
    transfer(server, SERVER, client, now=now)
    assert MessageAcked(SERVER, message_id) in drain(client)
    drain(server)
    return message_id


# -- liveness ----------------------------------------------------------------------------------


def test_a_probe_counts_silence_from_the_last_acknowledgement() -> None:
    client, server = pair()
    delivered(client, server, b"call", now=1.0)
    # Two seconds later nothing more came: a probe that keeps the liveness clock.
    client.send_message(SERVER, b"probe", now=3.0, keep_liveness_clock=True)
    client.datagrams_to_send(now=3.0)  # lost: the server is gone
    while (timer := client.get_timer()) is not None and timer < 6.0:
        client.handle_timer(now=timer)
        client.datagrams_to_send(now=timer)
    assert timer == pytest.approx(1.0 + CONFIG.peer_timeout)  # not 3.0 + peer_timeout
    client.handle_timer(now=timer)
    (event,) = drain(client)
    assert isinstance(event, PeerUnreachable)
    assert not event.refused
    assert not event.never_heard


def test_an_ordinary_message_restarts_the_liveness_clock() -> None:
    client, server = pair()
    delivered(client, server, b"call", now=1.0)
    client.send_message(SERVER, b"next call", now=3.0)
    client.datagrams_to_send(now=3.0)
    deadlines = []
    while (timer := client.get_timer()) is not None and timer < 9.0:
        deadlines.append(timer)
        client.handle_timer(now=timer)
        client.datagrams_to_send(now=timer)
    assert deadlines[-1] == pytest.approx(3.0 + CONFIG.peer_timeout)


# -- acknowledging at once ---------------------------------------------------------------------


def test_acknowledge_now_skips_the_ack_delay() -> None:
    client, server = pair()
    client.send_message(SERVER, b"oneway", now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    assert server.datagrams_to_send(now=0.0) == []  # the ACK waits for a reply to ride on
    server.acknowledge_now(CLIENT, now=0.0)
    (ack,) = server.datagrams_to_send(now=0.0)
    decoded = wire.decode_datagram_untrusted(ack[0])
    assert decoded.flags == wire.FLAG_ACK
    server.acknowledge_now(CLIENT, now=0.0)  # nothing owed any more: nothing to send
    assert server.datagrams_to_send(now=0.0) == []


# -- refusals (ICMP port unreachable) -----------------------------------------------------------


def test_a_refusal_with_the_refused_packet_names_what_never_arrived() -> None:
    client, server = pair()
    delivered(client, server, b"warm-up", now=0.0)
    early = client.send_message(SERVER, b"sent before the crash", now=1.0)
    (before,) = client.datagrams_to_send(now=1.0)  # may have reached the old server
    late = client.send_message(SERVER, b"sent after the crash", now=2.0)
    (refused,) = client.datagrams_to_send(now=2.0)
    # The kernel's error queue quotes the start of the refused datagram.
    client.report_refused(SERVER, [refused[0][:40]])
    (event,) = drain(client)
    assert event == PeerUnreachable(SERVER, (early, late), True, False, (late,))
    assert wire.decode_datagram_untrusted(before[0]).packet_number < (
        wire.decode_datagram_untrusted(refused[0]).packet_number
    )
    assert client.statistics().peers == 0  # forgotten: the next message starts afresh
    assert client.get_timer() is None


def test_a_quote_of_another_sessions_packet_proves_nothing() -> None:
    client, server = pair()
    delivered(client, server, b"warm-up", now=0.0)
    pending = client.send_message(SERVER, b"call", now=1.0)
    (datagram,) = client.datagrams_to_send(now=1.0)
    forged = bytearray(datagram[0][:40])
    forged[5:13] = (0xBAD).to_bytes(8, "big")  # another sender epoch
    client.report_refused(SERVER, [bytes(forged), b"short", b"\x00" * 40])
    assert drain(client) == [PeerUnreachable(SERVER, (pending,), True, False, ())]


def test_a_refusal_before_anything_was_heard() -> None:
    client, _ = pair()
    pending = client.send_message(SERVER, b"call", now=0.0)
    client.datagrams_to_send(now=0.0)
    client.report_refused(SERVER)
    assert drain(client) == [PeerUnreachable(SERVER, (pending,), True, True, ())]
    client.report_refused(SERVER)  # about no peer any more: ignored
    assert drain(client) == []


# -- what a closing or restarted peer never saw -------------------------------------------------


def test_a_drained_close_says_so() -> None:
    client, server = pair()
    delivered(client, server, b"call", now=0.0)
    server.close_all_peers(now=1.0, drained=lambda addr: addr == CLIENT)
    transfer(server, SERVER, client, now=1.0)
    assert drain(client) == [PeerClosed(SERVER, SERVER_EPOCH, True)]


def test_an_undrained_close_does_not() -> None:
    client, server = pair()
    delivered(client, server, b"call", now=0.0)
    server.close_all_peers(now=1.0)
    transfer(server, SERVER, client, now=1.0)
    assert drain(client) == [PeerClosed(SERVER, SERVER_EPOCH, False)]


def test_the_drained_flag_belongs_to_close_only() -> None:
    close = wire.encode_close(SERVER_EPOCH, CLIENT_EPOCH, drained=True)
    assert wire.decode_datagram_untrusted(close).flags == wire.FLAG_DRAINED
    notice = wire.encode_datagram(
        wire.TYPE_EPOCH_NOTICE, wire.FLAG_DRAINED, SERVER_EPOCH, CLIENT_EPOCH, 0, b"", b"", b""
    )
    packet = wire.encode_packet(
        wire.FLAG_PING | wire.FLAG_DRAINED, 1, 2, 3, None, 0, 0, 0, 0, 0, b""
    )
    for bad in (notice, packet):
        with pytest.raises(BadDatagram):
            wire.decode_datagram_untrusted(bad)


def test_an_epoch_notice_names_the_packet_it_answers() -> None:
    notice = wire.encode_epoch_notice(SERVER_EPOCH, CLIENT_EPOCH, 12345)
    decoded = wire.decode_datagram_untrusted(notice)
    assert (decoded.kind, decoded.packet_number) == (wire.TYPE_EPOCH_NOTICE, 12345)


def test_messages_sent_only_to_the_new_incarnation_are_unseen() -> None:
    client, old = pair()
    delivered(client, old, b"warm-up", now=0.0)
    maybe_seen = client.send_message(SERVER, b"before", now=1.0)
    client.datagrams_to_send(now=1.0)  # lost with the old incarnation, or not
    # The old incarnation dies; this message's first transmission meets its successor.
    only_new = client.send_message(SERVER, b"after", now=2.0)
    new = Endpoint(CONFIG, accept_new_peers=True, epoch=0x52)
    handed = client.datagrams_to_send(now=2.0)
    assert len(handed) == 1
    for data, _ in handed:
        new.receive_datagram(data, CLIENT, now=2.0)
    notices = [data for data, _ in new.datagrams_to_send(now=2.0)]
    assert notices
    client.receive_datagram(notices[-1], SERVER, now=2.0)
    (event,) = (e for e in drain(client) if not isinstance(e, MessageReceived))
    assert event.new_epoch == 0x52
    assert only_new in event.unseen_message_ids
    assert maybe_seen not in event.unseen_message_ids


def test_a_notice_naming_packet_zero_proves_nothing_about_what_was_sent() -> None:
    client, old = pair()
    delivered(client, old, b"warm-up", now=0.0)
    sent = client.send_message(SERVER, b"sent", now=1.0)
    client.datagrams_to_send(now=1.0)
    notice = wire.encode_epoch_notice(0x52, CLIENT_EPOCH, 0)  # an older sender's notice
    client.receive_datagram(notice, SERVER, now=1.5)
    (event,) = drain(client)
    assert event.new_epoch == 0x52
    assert sent not in event.unseen_message_ids  # it may have reached the old incarnation
