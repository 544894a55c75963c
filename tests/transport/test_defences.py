"""Anti-amplification, bounded peer table, compression, and statistics snapshots."""

from __future__ import annotations

import dataclasses
import random

import pytest
import zstandard
from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.errors import BadDatagram, InvalidArgument
from rpc.transport import wire
from rpc.transport.compression import Compressor
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageReceived

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)


def test_server_sends_at_most_three_times_what_it_received_until_validated() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, b"q" * 200, now=0.0)
    received = sum(len(d) for d in transfer(client, CLIENT, server, now=0.0))
    drain(server)
    reply = random.Random(3).randbytes(20_000)
    server.send_message(CLIENT, reply, now=0.001)
    first = server.datagrams_to_send(now=0.001)
    assert sum(len(data) for data, _ in first) <= 3 * received
    assert server.statistics().amplification_limited >= 1
    peer = server.peer_statistics(CLIENT)
    assert peer is not None
    assert not peer.validated
    # The client acknowledges; its datagrams echo the server's epoch, which validates it.
    for data, _ in first:
        client.receive_datagram(data, SERVER, now=0.002)
    client.handle_timer(now=0.007)
    transfer(client, CLIENT, server, now=0.007)
    peer = server.peer_statistics(CLIENT)
    assert peer is not None
    assert peer.validated
    for step in range(1, 50):
        now = 0.007 + step * 0.01
        transfer(server, SERVER, client, now=now)
        client.handle_timer(now=now + 0.005)
        transfer(client, CLIENT, server, now=now + 0.005)
        server.handle_timer(now=now + 0.005)
    assert [e.payload for e in drain(client) if isinstance(e, MessageReceived)] == [reply]


def test_peer_table_is_bounded_and_idle_peers_are_evicted() -> None:
    config = TransportConfig(max_peers=3, peer_idle_eviction=60.0)
    server = Endpoint(config, accept_new_peers=True, epoch=2)

    def ping(port: int, now: float) -> None:
        dgram = wire.encode_datagram(wire.TYPE_PACKET, wire.FLAG_PING, port, 0, 0, b"", b"", b"")
        server.receive_datagram(dgram, ("10.1.1.1", port), now=now)

    for port in (1, 2, 3, 4):
        ping(port, now=0.0)
    assert server.statistics().peers == 3
    assert server.statistics().peer_table_full_dropped == 1
    assert server.peer_statistics(("10.1.1.1", 4)) is None
    ping(4, now=61.0)  # peers 1..3 idle for 60 s are forgotten when a new peer arrives
    assert server.statistics().peers == 1
    assert server.statistics().peers_evicted == 3
    assert server.peer_statistics(("10.1.1.1", 4)) is not None


def test_compressible_payloads_are_flagged_and_restored() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    text = b"the quick brown fox jumps over the lazy dog " * 200
    client.send_message(SERVER, text, now=0.0)
    datagrams = transfer(client, CLIENT, server, now=0.0)
    assert len(datagrams) == 1  # 8800 bytes squeezed into one datagram
    assert wire.decode_datagram_untrusted(datagrams[0]).flags & wire.FLAG_COMPRESSED
    assert drain(server) == [MessageReceived(CLIENT, text, 1)]
    noise = random.Random(9).randbytes(5000)
    small = b"tiny but repetitive " * 10  # below the 1024-byte threshold
    for payload in (noise, small):
        client.send_message(SERVER, payload, now=0.1)
        for data in transfer(client, CLIENT, server, now=0.1):
            assert not wire.decode_datagram_untrusted(data).flags & wire.FLAG_COMPRESSED
    assert [e.payload for e in drain(server) if isinstance(e, MessageReceived)] == [noise, small]
    assert client.statistics().messages_compressed == 1


def test_decompression_is_bounded_and_failures_are_counted() -> None:
    compressor = Compressor(threshold=1024, level=1)
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(bytes(10_000_000))
    with pytest.raises(BadDatagram):
        compressor.decompress_untrusted(bomb, max_size=1_000_000)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 5000)
    with pytest.raises(BadDatagram):
        compressor.decompress_untrusted(unsized, max_size=1_000_000)
    with pytest.raises(BadDatagram):
        compressor.decompress_untrusted(b"not zstd at all", max_size=1_000_000)
    server = Endpoint(TransportConfig(max_message_size=1_000_000), accept_new_peers=True)
    head = wire.encode_data_head(1, 0, len(bomb), 0)
    flags = wire.FLAG_DATA | wire.FLAG_COMPRESSED
    dgram = wire.encode_datagram(wire.TYPE_PACKET, flags, 7, 0, 0, b"", head, bomb)
    server.receive_datagram(dgram, CLIENT, now=0.0)
    assert server.next_event() is None
    assert server.statistics().decompression_failures == 1


def test_statistics_are_frozen_snapshots_that_survive_forgetting_a_peer() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, b"abc", now=0.0)
    sent = transfer(client, CLIENT, server, now=0.0)
    before = server.statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.datagrams_received = 0  # type: ignore[misc]
    assert before.datagrams_received == 1
    assert before.bytes_received == len(sent[0])
    assert before.messages_received == 1
    assert before.peers == 1
    server.forget_peer(CLIENT)
    after = server.statistics()
    assert after.peers == 0
    assert after.datagrams_received == 1  # totals keep what forgotten peers counted
    assert server.peer_statistics(CLIENT) is None
    assert client.peer_statistics(SERVER) is not None


def test_bytes_like_inputs_are_accepted_and_bad_epochs_refused() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, bytearray(b"from a bytearray"), now=0.0)
    ((data, _),) = client.datagrams_to_send(now=0.0)
    server.receive_datagram(memoryview(data), CLIENT, now=0.0)
    assert drain(server) == [MessageReceived(CLIENT, b"from a bytearray", 1)]
    with pytest.raises(InvalidArgument):
        Endpoint(accept_new_peers=True, epoch=2**64)


def test_a_blocked_server_pings_to_get_its_client_validated() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, b"?", now=0.0)  # a 58-byte datagram: 174 bytes allowed back
    transfer(client, CLIENT, server, now=0.0)
    drain(client)
    reply = random.Random(4).randbytes(5000)
    server.send_message(CLIENT, reply, now=0.001)
    (ping,) = server.datagrams_to_send(now=0.001)  # no fragment fits; a PING (+ ACK) does
    decoded = wire.decode_datagram_untrusted(ping[0])
    assert decoded.flags == wire.FLAG_PING | wire.FLAG_ACK
    assert len(ping[0]) <= 3 * 58
    # The client has nothing to send but must acknowledge the PING, echoing the server's epoch.
    client.receive_datagram(ping[0], SERVER, now=0.002)
    client.handle_timer(now=0.007)
    transfer(client, CLIENT, server, now=0.007)
    peer = server.peer_statistics(CLIENT)
    assert peer is not None
    assert peer.validated
    assert len(transfer(server, SERVER, client, now=0.007)) == 5  # the whole reply, at once
    assert [e.payload for e in drain(client) if isinstance(e, MessageReceived)] == [reply]
