"""Fragments of queued messages are interleaved: a short message does not wait behind a long one."""

from __future__ import annotations

from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageReceived
from rpc.transport.peer import INTERLEAVED_MESSAGES

CONFIG = TransportConfig(initial_rtt=0.1, compression_threshold=1 << 30)


def _message_ids(datagrams: list[tuple[bytes, tuple[str, int]]]) -> list[int]:
    return [wire.decode_datagram_untrusted(data).message_id for data, _ in datagrams]


def test_a_short_message_goes_out_right_after_the_first_fragment_of_a_long_one() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    long_id = client.send_message(SERVER, bytes(200_000), now=0.0)
    short_id = client.send_message(SERVER, b"ping", now=0.0)
    ids = _message_ids(client.datagrams_to_send(now=0.0))
    assert ids[:3] == [long_id, short_id, long_id]
    assert ids.count(short_id) == 1


def test_only_a_bounded_number_of_messages_is_in_progress_at_once() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    ids = [client.send_message(SERVER, bytes(5_000), now=0.0) for _ in range(20)]
    sent = _message_ids(client.datagrams_to_send(now=0.0))
    started = set(sent)
    assert started == set(ids[:INTERLEAVED_MESSAGES])  # the window ran out first


def test_interleaved_messages_arrive_intact() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    payloads = [bytes([n]) * (300 + 3_000 * n) for n in range(12)]
    for payload in payloads:
        client.send_message(SERVER, payload, now=0.0)
    received: list[bytes] = []
    for step in range(200):
        now = step * 0.001
        for ep in (client, server):
            timer = ep.get_timer()
            if timer is not None and timer <= now:
                ep.handle_timer(now=now)
        transfer(client, CLIENT, server, now=now)
        transfer(server, SERVER, client, now=now)
        received += [e.payload for e in drain(server) if isinstance(e, MessageReceived)]
        drain(client)
    assert sorted(received) == sorted(payloads)
