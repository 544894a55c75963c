"""Hostile but well-formed datagrams (valid CRC, arbitrary fields) never break an endpoint."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from transport_harness import CLIENT, SERVER, transfer

from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.crc import crc32c
from rpc.transport.endpoint import Endpoint

U64 = st.integers(0, 2**64 - 1)
U32 = st.integers(0, 2**32 - 1)
SMALL = st.integers(0, 40)

ack_sections = st.builds(
    lambda largest, delay, first, rest: (
        wire.ACK_HEAD.pack(largest, delay, len(rest) + 1, first)
        + b"".join(wire.ACK_RANGE.pack(g, n) for g, n in rest)
    ),
    st.one_of(SMALL, U64),
    U32,
    st.one_of(SMALL, U32),
    st.lists(st.tuples(st.one_of(SMALL, U32), st.one_of(SMALL, U32)), max_size=5),
)
data_sections = st.builds(
    lambda mid, floor, total, offset, fragment: (
        wire.DATA_HEAD.pack(mid, floor, total, offset) + fragment
    ),
    st.one_of(SMALL, U64),
    st.one_of(SMALL, U64),
    st.one_of(st.integers(0, 3000), U32),
    st.one_of(st.integers(0, 3000), U32),
    st.binary(max_size=600),
)
EPOCHS = st.sampled_from([0, 1, 2, 0xC1, 0x5E, 0xDEAD])


@st.composite
def hostile_datagrams(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([wire.TYPE_PACKET, wire.TYPE_EPOCH_NOTICE]))
    flags = draw(st.integers(0, 15))
    body = b""
    if flags & wire.FLAG_ACK:
        body += draw(ack_sections)
    if flags & wire.FLAG_DATA:
        body += draw(data_sections)
    head = wire.HEADER.pack(
        wire.MAGIC, 1, kind, flags, draw(EPOCHS) or 7, draw(EPOCHS), draw(st.one_of(SMALL, U64))
    )
    raw = head + body
    return raw + struct.pack("<I", crc32c(raw))


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_datagrams(), min_size=1, max_size=8), st.booleans())
def test_hostile_datagrams_never_raise_and_legitimate_traffic_still_flows(
    datagrams: list[bytes], from_client_address: bool
) -> None:
    config = TransportConfig(initial_rtt=0.05, max_ack_delay=0.005)
    client = Endpoint(config, accept_new_peers=False, epoch=0xC1)
    server = Endpoint(config, accept_new_peers=True, epoch=0x5E)
    client.send_message(SERVER, b"hello", now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    source = CLIENT if from_client_address else ("10.9.9.9", 9)
    now = 0.0
    for raw in datagrams:
        now += 0.001
        server.receive_datagram(raw, source, now=now)
        client.receive_datagram(raw, SERVER, now=now)
        for endpoint in (client, server):
            endpoint.datagrams_to_send(now=now)
            timer = endpoint.get_timer()
            if timer is not None and timer <= now:
                endpoint.handle_timer(now=now)
    stats = server.statistics()
    client_stats = client.statistics()
    received = stats.datagrams_received + client_stats.datagrams_received
    dropped = sum(
        # A datagram naming a live session's epoch from another address is dropped too.
        s.malformed_dropped
        + s.old_epoch_dropped
        + s.unknown_peer_dropped
        + s.address_mismatch_drops
        for s in (stats, client_stats)
    )
    assert received + dropped >= len(datagrams)  # every datagram was accounted for somewhere
    # Whatever happened, every timer stays finite and the endpoints keep answering.
    for endpoint in (client, server):
        endpoint.handle_timer(now=now + 100.0)
        endpoint.datagrams_to_send(now=now + 100.0)
        assert endpoint.statistics().peers >= 0
