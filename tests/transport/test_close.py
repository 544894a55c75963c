"""Clean close: the final ACK goes out at once, and a CLOSE frees the peer's state."""

from __future__ import annotations

from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import CLOSE_COPIES, Endpoint
from rpc.transport.events import MessageAcked, MessageReceived, PeerClosed, PeerUnreachable

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005, peer_timeout=10.0)


def _call_and_reply() -> tuple[Endpoint, Endpoint]:
    """The client sent a call and received its reply; it owes the reply's ACK."""
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x5E)
    client.send_message(SERVER, b"call", now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    drain(server)
    server.send_message(CLIENT, b"reply", now=0.001)
    transfer(server, SERVER, client, now=0.001)
    assert [type(e) for e in drain(client)] == [MessageAcked, MessageReceived]
    assert client.datagrams_to_send(now=0.001) == []  # the ACK waits for the ack delay
    return client, server


def test_close_peer_sends_the_owed_ack_at_once_then_close_frames() -> None:
    client, _ = _call_and_reply()
    client.close_peer(SERVER, now=0.002)  # before the ack delay (5 ms) runs out
    out = client.datagrams_to_send(now=0.002)
    kinds = [wire.decode_datagram_untrusted(data) for data, _ in out]
    assert kinds[0].kind == wire.TYPE_PACKET
    assert kinds[0].flags == wire.FLAG_ACK
    assert [d.kind for d in kinds[1:]] == [wire.TYPE_CLOSE] * CLOSE_COPIES
    assert all(d.sender_epoch == 0xC1 and d.receiver_epoch == 0x5E for d in kinds[1:])
    assert all(addr == SERVER for _, addr in out)
    assert client.peer_statistics(SERVER) is None
    assert client.get_timer() is None
    assert client.statistics().closes_sent == CLOSE_COPIES


def test_the_server_frees_the_peer_at_once_and_never_reports_it_unreachable() -> None:
    client, server = _call_and_reply()
    client.close_peer(SERVER, now=0.002)
    transfer(client, CLIENT, server, now=0.002)
    events = drain(server)
    assert events == [MessageAcked(CLIENT, 1), PeerClosed(CLIENT, 0xC1)]
    stats = server.statistics()
    assert stats.peers == 0
    assert stats.peers_closed == 1
    assert server.get_timer() is None
    assert server.datagrams_to_send(now=0.003) == []


def test_a_close_discards_unacked_messages_without_events() -> None:
    client, server = _call_and_reply()
    server.send_message(CLIENT, b"late", now=0.002)
    server.datagrams_to_send(now=0.002)  # lost: the client never sees it
    client.close_peer(SERVER, now=0.003)
    # Only the CLOSEs arrive (the final ACK is lost too).
    transfer(client, CLIENT, server, now=0.003, drop=frozenset({0}))
    assert drain(server) == [PeerClosed(CLIENT, 0xC1)]
    for now in (0.1, 1.0, 11.0, 30.0):
        if (timer := server.get_timer()) is not None and timer <= now:
            server.handle_timer(now=now)
        assert server.datagrams_to_send(now=now) == []
    assert not any(isinstance(e, PeerUnreachable) for e in drain(server))
    assert server.statistics().peers_unreachable == 0


def test_stragglers_of_a_closed_session_start_nothing_from_any_address() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x5E)
    client.send_message(SERVER, b"call", now=0.0)
    call = transfer(client, CLIENT, server, now=0.0)
    drain(server)
    server.send_message(CLIENT, b"reply", now=0.001)
    transfer(server, SERVER, client, now=0.001)
    client.close_peer(SERVER, now=0.002)
    transfer(client, CLIENT, server, now=0.002)
    drain(server)
    for addr in (CLIENT, ("10.7.7.7", 1234)):
        for data in call:
            server.receive_datagram(data, addr, now=0.003)
    assert drain(server) == []  # the call does not run again
    assert server.statistics().peers == 0


def test_a_close_with_the_wrong_epochs_is_ignored() -> None:
    _, server = _call_and_reply()
    forged = [wire.encode_close(0xC1, 0x999), wire.encode_close(0xBAD, 0x5E)]
    for data in forged:
        server.receive_datagram(data, CLIENT, now=0.002)
    assert drain(server) == []
    assert server.statistics().peers == 1
    assert server.statistics().peers_closed == 0


def test_a_close_frame_is_a_bare_header() -> None:
    data = wire.encode_close(1, 2)
    assert len(data) == wire.MIN_DATAGRAM
    decoded = wire.decode_datagram_untrusted(data)
    assert (decoded.kind, decoded.flags, decoded.sender_epoch, decoded.receiver_epoch) == (
        wire.TYPE_CLOSE,
        0,
        1,
        2,
    )




def test_closing_an_unvalidated_peer_stays_within_the_amplification_budget() -> None:
    # A server that heard one small datagram from an address (perhaps spoofed) and already
    # spent most of its 3x budget on a reply sends fewer CLOSE frames: a CLOSE is subject
    # to anti-amplification like everything else.
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x5E)
    client.send_message(SERVER, b"x", now=0.0)
    data, _ = client.datagrams_to_send(now=0.0)[0]
    server.receive_datagram(data, CLIENT, now=0.0)
    drain(server)
    server.send_message(CLIENT, b"y" * 60, now=0.001)
    out = server.datagrams_to_send(now=0.001)
    server.close_peer(CLIENT, now=0.002)
    out += server.datagrams_to_send(now=0.002)
    sent = sum(len(datagram) for datagram, _ in out)
    assert sent <= 3 * len(data)
    assert server.statistics().closes_sent < CLOSE_COPIES
