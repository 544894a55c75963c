"""Epochs: restarts are recognised, old incarnations' datagrams dropped and counted."""

from __future__ import annotations

from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageAcked, MessageReceived, PeerRestarted

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)


def exchange(client: Endpoint, server: Endpoint, now: float) -> None:
    """One call and reply, fully acknowledged."""
    client.send_message(SERVER, b"call", now=now)
    transfer(client, CLIENT, server, now=now)
    server.send_message(CLIENT, b"reply", now=now)
    transfer(server, SERVER, client, now=now)
    client.handle_timer(now=now + 0.005)
    transfer(client, CLIENT, server, now=now + 0.005)
    drain(client)
    drain(server)


def test_restarted_client_is_reported_and_old_datagrams_are_dropped() -> None:
    old_client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xA1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x5E)
    exchange(old_client, server, now=0.0)
    old_client.send_message(SERVER, b"late", now=0.1)
    (late,) = old_client.datagrams_to_send(now=0.1)  # in the network while the client dies
    server.send_message(CLIENT, b"unanswered", now=0.1)  # will never be acknowledged
    server.datagrams_to_send(now=0.1)

    new_client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xA2)
    new_client.send_message(SERVER, b"hello again", now=1.0)
    transfer(new_client, CLIENT, server, now=1.0)
    assert drain(server) == [
        PeerRestarted(CLIENT, 0xA1, 0xA2),
        MessageReceived(CLIENT, b"hello again", 0xA2),
    ]
    server.receive_datagram(late[0], CLIENT, now=1.1)  # the old incarnation's straggler
    assert drain(server) == []
    stats = server.statistics()
    assert stats.old_epoch_dropped == 1
    assert stats.peers_restarted == 1
    peer = server.peer_statistics(CLIENT)
    assert peer is not None
    assert peer.peer_epoch == 0xA2
    assert peer.send_buffer_bytes == 0  # the reply to the old incarnation was discarded


def test_restarted_server_answers_old_epoch_with_a_notice() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    old_server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x51)
    exchange(client, old_server, now=0.0)
    pending = client.send_message(SERVER, b"call to a dead server", now=1.0)
    new_server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x52)
    transfer(client, CLIENT, new_server, now=1.0)
    assert drain(new_server) == []  # addressed to epoch 0x51: not for this incarnation
    assert new_server.statistics().old_epoch_dropped == 1
    (notice,) = new_server.datagrams_to_send(now=1.0)
    decoded = wire.decode_datagram_untrusted(notice[0])
    assert decoded.kind == wire.TYPE_EPOCH_NOTICE
    assert (decoded.sender_epoch, decoded.receiver_epoch) == (0x52, 0xC1)
    assert new_server.statistics().peers == 0  # answered without creating state
    client.receive_datagram(notice[0], SERVER, now=1.01)
    # The call's only transmission reached the new incarnation: the old one never saw it.
    assert drain(client) == [PeerRestarted(SERVER, 0x51, 0x52, (pending,))]
    # The call to the dead incarnation is dropped: no MessageAcked for it, no retransmission.
    assert client.datagrams_to_send(now=5.0) == []
    client.handle_timer(now=5.0)
    assert all(not isinstance(e, MessageAcked) or e.message_id != pending for e in drain(client))
    # Calls to the new incarnation work.
    client.send_message(SERVER, b"fresh call", now=6.0)
    transfer(client, CLIENT, new_server, now=6.0)
    assert drain(new_server) == [MessageReceived(CLIENT, b"fresh call", 0xC1)]


def test_a_replayed_epoch_notice_changes_nothing() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=0x51)
    exchange(client, server, now=0.0)
    stale = wire.encode_epoch_notice(0x51, 0xC1)  # claims the epoch we already know
    client.receive_datagram(stale, SERVER, now=1.0)
    foreign = wire.encode_epoch_notice(0x99, 0xDEAD)  # about someone else's epoch
    client.receive_datagram(foreign, SERVER, now=1.0)
    assert drain(client) == []
    peer = client.peer_statistics(SERVER)
    assert peer is not None
    assert peer.peer_epoch == 0x51


def test_client_drops_datagrams_from_addresses_it_never_contacted() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(CONFIG, accept_new_peers=False, epoch=0x51)
    server.send_message(CLIENT, b"unsolicited", now=0.0)
    transfer(server, SERVER, client, now=0.0)
    assert drain(client) == []
    assert client.statistics().unknown_peer_dropped == 1
    assert client.statistics().peers == 0
