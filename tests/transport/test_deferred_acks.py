"""Deferred ACK processing (``Endpoint.defer_acks``): a driver answers a datagram before it
applies the ACK the datagram carried, and the endpoint stays exact about everything the ACK
changes."""

from __future__ import annotations

import pytest
from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.errors import SendBufferFull
from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import MAX_DEFERRED_ACKS, Endpoint
from rpc.transport.events import MessageAcked, MessageReceived

CONFIG = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005)


def pair(config: TransportConfig = CONFIG) -> tuple[Endpoint, Endpoint]:
    client = Endpoint(config, accept_new_peers=False, epoch=1)
    server = Endpoint(config, accept_new_peers=True, epoch=2)
    server.defer_acks = True
    return client, server


def exchange(client: Endpoint, server: Endpoint, *, now: float, payload: bytes) -> list[bytes]:
    """The client sends ``payload``; the server receives it and replies with it at ``now``.
    Returns the server's datagrams (the reply)."""
    client.send_message(SERVER, payload, now=now)
    transfer(client, CLIENT, server, now=now)
    for event in drain(server):
        if isinstance(event, MessageReceived):
            server.send_message(event.addr, event.payload, now=now)
    out = [data for data, _ in server.datagrams_to_send(now=now)]
    for data in out:
        client.receive_datagram(data, SERVER, now=now)
    return out


def test_the_reply_goes_out_before_the_ack_its_call_carried_is_applied() -> None:
    client, server = pair()
    exchange(client, server, now=0.0, payload=b"one")
    drain(client)
    # The second call's datagram acknowledges the first reply (piggy-backed).
    client.send_message(SERVER, b"two", now=0.010)
    transfer(client, CLIENT, server, now=0.010)
    events = drain(server)
    assert [type(e) for e in events] == [MessageReceived]  # no MessageAcked yet
    server.send_message(CLIENT, b"two", now=0.010)
    (reply,) = server.datagrams_to_send(now=0.010)
    assert bytes(wire.decode_datagram_untrusted(reply[0]).fragment) == b"two"
    assert server.process_deferred_acks() is True
    acked = drain(server)
    assert [type(e) for e in acked] == [MessageAcked]
    assert server.process_deferred_acks() is False  # nothing left


def test_deferred_ack_takes_its_rtt_sample_at_arrival_time() -> None:
    client, server = pair()
    exchange(client, server, now=0.0, payload=b"one")  # server's reply sent at 0.0
    client.send_message(SERVER, b"two", now=0.030)
    transfer(client, CLIENT, server, now=0.030)  # carries the ACK of the reply, 30 ms later
    server.process_deferred_acks()  # applied "later": the sample is still 30 ms
    stats = server.peer_statistics(CLIENT)
    assert stats is not None
    # The client held the ACK for up to its ack delay; the sample is arrival minus send time.
    assert stats.latest_rtt == pytest.approx(0.030)


def test_a_timer_applies_deferred_acks_before_deciding_to_retransmit() -> None:
    client, server = pair()
    exchange(client, server, now=0.0, payload=b"one")
    client.send_message(SERVER, b"two", now=0.010)
    transfer(client, CLIENT, server, now=0.010)
    drain(server)
    # Nothing applied the ACK of the first reply; its retransmission timeout passes.
    server.handle_timer(now=5.0)
    resent = server.datagrams_to_send(now=5.0)
    assert server.statistics().retransmissions == 0, resent
    assert any(isinstance(e, MessageAcked) for e in drain(server))


def test_statistics_and_send_capacity_apply_deferred_acks_first() -> None:
    client, server = pair()
    exchange(client, server, now=0.0, payload=b"x" * 100)
    client.send_message(SERVER, b"y", now=0.010)
    transfer(client, CLIENT, server, now=0.010)
    assert server.statistics().messages_acked == 1  # applied on demand
    assert server.process_deferred_acks() is False
    exchange(client, server, now=0.020, payload=b"z" * 100)
    client.send_message(SERVER, b"w", now=0.030)
    transfer(client, CLIENT, server, now=0.030)
    assert server.send_capacity(CLIENT) == CONFIG.send_buffer_size  # the reply is acked


def test_a_full_send_buffer_applies_deferred_acks_before_refusing() -> None:
    config = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005, send_buffer_size=1000)
    client, server = pair(config)
    exchange(client, server, now=0.0, payload=b"x" * 900)  # the reply fills the buffer
    client.send_message(SERVER, b"next", now=0.010)
    transfer(client, CLIENT, server, now=0.010)  # ... and this ACKs it (deferred)
    drain(server)
    server.send_message(CLIENT, b"y" * 900, now=0.010)  # room, once the ACK is applied
    assert server.statistics().messages_acked == 1


def test_a_full_send_buffer_still_refuses_when_nothing_is_acked() -> None:
    config = TransportConfig(initial_rtt=0.1, max_ack_delay=0.005, send_buffer_size=1000)
    _client, server = pair(config)
    server.send_message(CLIENT, b"x" * 900, now=0.0)
    with pytest.raises(SendBufferFull):
        server.send_message(CLIENT, b"y" * 900, now=0.0)


def test_acks_deferred_for_a_session_that_restarted_are_dropped() -> None:
    client, server = pair()
    exchange(client, server, now=0.0, payload=b"one")
    client.send_message(SERVER, b"two", now=0.010)
    transfer(client, CLIENT, server, now=0.010)  # ACK of the reply: deferred
    drain(server)
    # The client restarts (new epoch, same address) before the server applies the ACK.
    reborn = Endpoint(CONFIG, accept_new_peers=False, epoch=3)
    reborn.send_message(SERVER, b"hello", now=0.020)
    transfer(reborn, CLIENT, server, now=0.020)
    server.process_deferred_acks()
    events = drain(server)
    # The old session's reply was abandoned with it: never reported as acknowledged.
    assert not any(isinstance(e, MessageAcked) for e in events)
    assert server.statistics().messages_acked == 0


def test_deferred_acks_stay_bounded_without_a_driver() -> None:
    client, server = pair()
    for k in range(MAX_DEFERRED_ACKS + 10):
        exchange(client, server, now=0.001 * k, payload=b"%d" % k)
        drain(client)
    drain(server)
    # Each CALL acknowledged the reply before it; at most the bound was ever pending.
    pending = server.process_deferred_acks()
    acked = [e for e in drain(server) if isinstance(e, MessageAcked)]
    assert len(acked) <= MAX_DEFERRED_ACKS
    total = server.statistics().messages_acked
    assert total == MAX_DEFERRED_ACKS + 9  # every reply but the last, whose ACK is owed
    assert pending is (len(acked) > 0)


def test_without_deferral_acks_apply_on_receipt() -> None:
    client, server = pair()
    server.defer_acks = False
    exchange(client, server, now=0.0, payload=b"one")
    client.send_message(SERVER, b"two", now=0.010)
    transfer(client, CLIENT, server, now=0.010)
    assert [type(e) for e in drain(server)] == [MessageAcked, MessageReceived]
    assert server.process_deferred_acks() is False
