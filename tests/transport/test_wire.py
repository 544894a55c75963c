"""The datagram format: round trips, validation rules, and fuzzing of the untrusted decoder."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpc.errors import BadDatagram
from rpc.transport import wire
from rpc.transport.crc import crc32c
from rpc.transport.endpoint import Endpoint

SENDER = 0x1122334455667788
RECEIVER = 0x99AABBCCDDEEFF00


def data_datagram(fragment: bytes = b"payload", *, flags: int = 0, ack: bytes = b"") -> bytes:
    head = wire.encode_data_head(message_id=9, floor=7, total_length=100, offset=40)
    flags |= wire.FLAG_DATA | (wire.FLAG_ACK if ack else 0)
    return wire.encode_datagram(wire.TYPE_PACKET, flags, SENDER, RECEIVER, 5, ack, head, fragment)


def with_crc(body: bytes) -> bytes:
    """A datagram body sealed with a valid CRC, whatever nonsense it contains."""
    return body + struct.pack("<I", crc32c(body))


def test_header_layout_is_byte_exact() -> None:
    dgram = wire.encode_datagram(wire.TYPE_PACKET, wire.FLAG_PING, 1, 2, 3, b"", b"", b"")
    assert dgram[:29] == bytes.fromhex("5552010108000000000000000100000000000000020000000000000003")
    assert len(dgram) == 33
    assert dgram[29:] == struct.pack("<I", crc32c(dgram[:29]))


def test_data_and_ack_round_trip() -> None:
    ack = wire.encode_ack([(90, 100), (50, 80), (10, 10)], ack_delay_us=1234)
    raw = data_datagram(b"x" * 60, flags=wire.FLAG_COMPRESSED, ack=ack)
    got = wire.decode_datagram_untrusted(raw)
    assert (got.kind, got.sender_epoch, got.receiver_epoch, got.packet_number) == (
        wire.TYPE_PACKET,
        SENDER,
        RECEIVER,
        5,
    )
    assert got.flags == wire.FLAG_DATA | wire.FLAG_ACK | wire.FLAG_COMPRESSED
    assert got.ack_ranges == [(90, 100), (50, 80), (10, 10)]
    assert got.ack_delay_us == 1234
    assert (got.message_id, got.message_floor, got.total_length, got.offset) == (9, 7, 100, 40)
    assert bytes(got.fragment) == b"x" * 60


def test_ack_encoding_is_byte_exact() -> None:
    ack = wire.encode_ack([(90, 100), (50, 80)], ack_delay_us=7)
    # largest 100, delay 7 µs, 2 ranges, first range covers 100-90; then 9 missing (81..89)
    # and a range of 30 below them (80..50).
    assert ack == struct.pack(">QIBI", 100, 7, 2, 10) + struct.pack(">II", 9, 30)


def test_epoch_notice_round_trip() -> None:
    got = wire.decode_datagram_untrusted(wire.encode_epoch_notice(SENDER, RECEIVER))
    assert (got.kind, got.sender_epoch, got.receiver_epoch) == (
        wire.TYPE_EPOCH_NOTICE,
        SENDER,
        RECEIVER,
    )


HEAD = wire.HEADER


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (HEAD.pack(0x5553, 1, 1, 8, 1, 0, 0), "magic"),
        (HEAD.pack(wire.MAGIC, 2, 1, 8, 1, 0, 0), "version"),
        (HEAD.pack(wire.MAGIC, 1, 9, 8, 1, 0, 0), "type"),
        (HEAD.pack(wire.MAGIC, 1, 1, 0x80, 1, 0, 0), "flags"),
        (HEAD.pack(wire.MAGIC, 1, 1, 8, 0, 0, 0), "zero sender"),
        (HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_ACK, 1, 0, 0) + b"\0" * 5, "truncated ack"),
        (
            HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_ACK, 1, 0, 0) + wire.ACK_HEAD.pack(5, 0, 0, 0),
            "no ranges",
        ),
        (
            HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_ACK, 1, 0, 0) + wire.ACK_HEAD.pack(5, 0, 1, 6),
            "range below zero",
        ),
        (
            HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_ACK, 1, 0, 0)
            + wire.ACK_HEAD.pack(5, 0, 2, 0)
            + wire.ACK_RANGE.pack(0, 0),
            "zero gap",
        ),
        (
            HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_DATA, 1, 0, 0)
            + wire.DATA_HEAD.pack(1, 0, 10, 8)
            + b"abc",
            "beyond end",
        ),
        (
            HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_DATA, 1, 0, 0) + wire.DATA_HEAD.pack(1, 2, 3, 0),
            "empty fragment / floor",
        ),
        (
            HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_DATA, 1, 0, 0)
            + wire.DATA_HEAD.pack(1, 2, 3, 0)
            + b"abc",
            "floor above id",
        ),
        (HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_COMPRESSED, 1, 0, 0), "compressed without data"),
        (HEAD.pack(wire.MAGIC, 1, 1, wire.FLAG_PING, 1, 0, 0) + b"junk", "trailing bytes"),
        (HEAD.pack(wire.MAGIC, 1, 2, 0, 1, 0, 0) + b"x", "notice with a body"),
        (HEAD.pack(wire.MAGIC, 1, 2, 1, 1, 0, 0), "notice with flags"),
    ],
)
def test_invalid_datagrams_with_valid_crc_are_rejected(body: bytes, reason: str) -> None:
    with pytest.raises(BadDatagram):
        wire.decode_datagram_untrusted(with_crc(body))


def test_truncated_and_corrupted_datagrams_are_rejected() -> None:
    raw = data_datagram()
    for cut in range(len(raw)):
        with pytest.raises(BadDatagram):
            wire.decode_datagram_untrusted(raw[:cut])
    with pytest.raises(wire.CrcMismatch):
        wire.decode_datagram_untrusted(raw[:-1] + bytes([raw[-1] ^ 1]))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_bad_datagram(data: bytes) -> None:
    try:
        got = wire.decode_datagram_untrusted(data)
    except BadDatagram:
        return
    assert isinstance(got, wire.Datagram)  # a random CRC match must still decode fully


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_arbitrary_bodies_with_a_valid_crc_only_raise_bad_datagram(body: bytes) -> None:
    # Past the CRC, every field is hostile: the structural checks must hold on their own.
    sealed = with_crc(HEAD.pack(wire.MAGIC, 1, 1, body[0] & 0x0F if body else 0, 1, 2, 3) + body)
    try:
        got = wire.decode_datagram_untrusted(sealed)
    except BadDatagram:
        return
    assert got.kind == wire.TYPE_PACKET


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_bit_flip_is_caught_by_the_crc_and_counted(data: st.DataObject) -> None:
    ack = wire.encode_ack([(3, 9), (0, 1)], ack_delay_us=10)
    raw = data_datagram(b"z" * data.draw(st.integers(1, 60)), ack=ack)
    position = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = raw[:position] + bytes([raw[position] ^ (1 << bit)]) + raw[position + 1 :]
    with pytest.raises(wire.CrcMismatch):
        wire.decode_datagram_untrusted(flipped)
    endpoint = Endpoint(accept_new_peers=True)
    endpoint.receive_datagram(flipped, ("127.0.0.1", 9), now=0.0)
    stats = endpoint.statistics()
    assert stats.crc_failures == 1
    assert stats.peers == 0  # nothing changed but the counter
    assert endpoint.datagrams_to_send(now=0.0) == []


def test_the_one_unpack_fast_path_agrees_with_the_general_decoder() -> None:
    """ACK+DATA datagrams (valid and with header bytes changed under a valid CRC) decode to the
    same fields, or fail, on both paths."""
    rng = random.Random(5)
    fields = ("kind", "flags", "sender_epoch", "receiver_epoch", "packet_number", "ack_ranges",
              "ack_delay_us", "message_id", "message_floor", "total_length", "offset")  # fmt: skip

    def decode(data: bytes, *, general: bool = False) -> object:
        try:
            if general:  # what decode_datagram_untrusted does when the fast path does not apply
                dgram = wire._decode_general(data, len(data))
            else:
                dgram = wire.decode_datagram_untrusted(data)
        except BadDatagram:
            return "bad"
        return (*(getattr(dgram, name) for name in fields), bytes(dgram.fragment))

    samples = []
    for _ in range(2000):
        fragment = rng.randbytes(rng.choice([0, 1, 300, 3000]))
        total = len(fragment) + rng.choice([0, 0, 10])
        ranges = [[rng.randrange(5), rng.randrange(5, 9)]]
        body = bytearray(
            wire.encode_packet(wire.FLAG_ACK | wire.FLAG_DATA, rng.choice([0, 1]), 2, 9, ranges, 7,
                               rng.randrange(1, 5), rng.randrange(6), total, rng.choice([0, 5]),
                               fragment)[: -wire.CRC_SIZE]
        )  # fmt: skip
        for _ in range(rng.randrange(3)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        samples.append(bytes(body) + crc32c(bytes(body)).to_bytes(4, "little"))
    fast = [decode(data) for data in samples]
    general = [decode(data, general=True) for data in samples]
    assert fast == general
    took_fast_path = [
        data[4] == wire.FLAG_ACK | wire.FLAG_DATA and data[wire._RANGE_COUNT_AT] == 1
        for data in samples
    ]
    assert 200 < sum(took_fast_path) < len(samples)
    assert 200 < sum(result != "bad" for result in fast) < len(samples)  # both kinds occurred
