"""The datagram format: encoding, and decoding of untrusted bytes (see ``docs/protocol.md``).

A datagram is a fixed header, an optional ACK section, an optional DATA section (one fragment of
one message) and a CRC-32C trailer. All integers are big-endian except the CRC, which is stored
little-endian so that the CRC of the whole datagram is a constant
(:data:`rpc.transport.crc.CRC32C_RESIDUE`).

:func:`decode_datagram_untrusted` either returns a :class:`Datagram` or raises
:class:`rpc.errors.BadDatagram`; it never raises anything else, whatever the input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Final, cast

from rpc.errors import BadDatagram
from rpc.transport import crc

# Module constants are Final: mypyc then binds them at compile time (or in a C static) instead
# of looking each one up in the module's dict on every use, as it must for a plain global.
CRC32C_RESIDUE: Final = crc.CRC32C_RESIDUE
_crc32c: Final[Callable[[bytes], int]] = crc.crc32c
_crc32c_extend: Final[Callable[[int, bytes], int]] = crc.crc32c_extend

MAGIC: Final = 0x5552  # "UR"
VERSION: Final = 1

#: Datagram types (header byte 3).
TYPE_PACKET: Final = 1  # a numbered packet: ACK and/or DATA sections, or a PING
TYPE_EPOCH_NOTICE: Final = 2  # stateless "I am epoch X; I do not know the epoch you addressed"
TYPE_CLOSE: Final = 3  # "epoch X is closing its session with epoch Y: drop it now" (best effort)
#: Types that are a bare header (no sections, flags 0, packet number 0).
_BARE_TYPES: Final = (TYPE_EPOCH_NOTICE, TYPE_CLOSE)

#: Flag bits (header byte 4).
FLAG_ACK: Final = 0x01  # an ACK section follows the header
FLAG_DATA: Final = 0x02  # a DATA section follows (after the ACK section, if any)
FLAG_COMPRESSED: Final = 0x04  # the message this fragment belongs to is zstd-compressed
FLAG_PING: Final = 0x08  # ack-eliciting although it carries no data (a probe)
#: On a CLOSE only: the sender drained the session before closing it, so it never processed
#: anything the receiver still awaits an answer for (for the RPC layer: every call it ran was
#: answered and the answer acknowledged; see docs/protocol.md, "Closing").
FLAG_DRAINED: Final = 0x10
_KNOWN_FLAGS: Final = FLAG_ACK | FLAG_DATA | FLAG_COMPRESSED | FLAG_PING | FLAG_DRAINED


class CrcMismatch(BadDatagram):
    """The datagram's CRC-32C does not match: corrupted in transit (or not ours at all)."""


HEADER: Final = struct.Struct(">HBBBQQQ")  # magic, version, type, flags, sender/receiver epoch, pn
#: Largest acked, ack delay (µs), range count, first range length.
ACK_HEAD: Final = struct.Struct(">QIBI")
ACK_RANGE: Final = struct.Struct(">II")  # gap (missing packet numbers, >= 1), range length
#: Message id, message floor, total length, fragment offset.
DATA_HEAD: Final = struct.Struct(">QQII")
CRC_SIZE: Final = 4
_CRC: Final = struct.Struct("<I")
#: The common shapes of a PACKET's head packed in one call (">" has no padding, so these are
#: exactly the concatenations of the sections above): header + one-range ACK (+ DATA head).
_HEAD_ACK: Final = struct.Struct(">HBBBQQQ" "QIBI")
_HEAD_ACK_DATA: Final = struct.Struct(">HBBBQQQ" "QIBI" "QQII")
_HEAD_DATA: Final = struct.Struct(">HBBBQQQ" "QQII")
_ACK_DATA: Final = FLAG_ACK | FLAG_DATA
_RANGE_COUNT_AT: Final = HEADER.size + 12  # offset of the ACK section's range count
_ACK_DATA_MIN: Final = _HEAD_ACK_DATA.size + CRC_SIZE
#: Below this many fragment bytes, concatenating and checksumming once beats two CRC calls.
_SMALL_FRAGMENT: Final = 2048

HEADER_SIZE: Final = HEADER.size
_HEAD_ACK_DATA_SIZE: Final = _HEAD_ACK_DATA.size
#: What the structs unpack to. struct says ``tuple[Any, ...]``; cast to these (a checked
#: conversion when compiled), the fields are native ints and compare without boxing.
_HeaderFields = tuple[int, int, int, int, int, int, int]
_AckDataFields = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int]
_FourFields = tuple[int, int, int, int]
#: Every fragment but the last of its message carries at least this many bytes.
MIN_FRAGMENT_SIZE: Final = 256
MIN_DATAGRAM: Final = HEADER_SIZE + CRC_SIZE
_U32_MAX: Final = 0xFFFFFFFF


class Datagram:
    """One decoded datagram. Plain slots object: it is built once per received datagram."""

    __slots__ = (
        "ack_delay_us",
        "ack_ranges",
        "flags",
        "fragment",
        "kind",
        "message_floor",
        "message_id",
        "offset",
        "packet_number",
        "received_at",
        "receiver_epoch",
        "sender_epoch",
        "total_length",
    )

    def __init__(
        self,
        kind: int,
        flags: int,
        sender_epoch: int,
        receiver_epoch: int,
        packet_number: int,
        ack_ranges: list[tuple[int, int]] | None = None,
        ack_delay_us: int = 0,
        message_id: int = 0,
        message_floor: int = 0,
        total_length: int = 0,
        offset: int = 0,
        fragment: memoryview | bytes = b"",
    ) -> None:
        self.kind = kind
        self.flags = flags
        self.sender_epoch = sender_epoch
        self.receiver_epoch = receiver_epoch
        self.packet_number = packet_number
        #: Acknowledged packet numbers as inclusive ``(low, high)`` pairs, highest first.
        self.ack_ranges: list[tuple[int, int]] = [] if ack_ranges is None else ack_ranges
        self.ack_delay_us = ack_delay_us
        self.message_id = message_id
        self.message_floor = message_floor
        self.total_length = total_length
        self.offset = offset
        self.fragment = fragment
        #: When it arrived, for an ACK the endpoint applies later (``Endpoint.defer_acks``).
        self.received_at = 0.0


def encode_ack(ranges: Sequence[Sequence[int]], ack_delay_us: int) -> bytes:
    """Encode an ACK section for inclusive ``(low, high)`` ranges sorted highest first."""
    low, high = ranges[0]
    if len(ranges) == 1 and high - low <= _U32_MAX:  # the common case: no gaps
        return ACK_HEAD.pack(high, min(ack_delay_us, _U32_MAX), 1, high - low)
    first_len = min(high - low, _U32_MAX)
    parts = [b""]
    prev_low = high - first_len
    for lo, hi in ranges[1:]:
        gap = prev_low - hi - 1
        length = hi - lo
        if gap < 1 or gap > _U32_MAX or length > _U32_MAX:
            break  # what does not fit is simply not acknowledged (yet)
        parts.append(ACK_RANGE.pack(gap, length))
        prev_low = lo
    parts[0] = ACK_HEAD.pack(high, min(ack_delay_us, _U32_MAX), len(parts), first_len)
    return b"".join(parts)


def encode_datagram(
    kind: int,
    flags: int,
    sender_epoch: int,
    receiver_epoch: int,
    packet_number: int,
    ack: bytes,
    data_head: bytes,
    fragment: bytes,
) -> bytes:
    """Assemble a datagram from pre-encoded sections and append its CRC-32C.

    ``ack`` and ``data_head`` are empty when their flag is clear; ``fragment`` is copied once.
    """
    head = HEADER.pack(MAGIC, VERSION, kind, flags, sender_epoch, receiver_epoch, packet_number)
    if fragment:
        prefix = head + ack + data_head
        checksum = _crc32c_extend(_crc32c(prefix), fragment)
        return b"".join((prefix, fragment, _CRC.pack(checksum)))
    body = head + ack + data_head
    return body + _CRC.pack(_crc32c(body))


def encode_packet(
    flags: int,
    sender_epoch: int,
    receiver_epoch: int,
    packet_number: int,
    ranges: list[list[int]] | None,
    ack_delay_us: int,
    message_id: int,
    floor: int,
    total_length: int,
    offset: int,
    fragment: bytes,
) -> bytes:
    """A whole PACKET. ``ranges`` are the inclusive ``[low, high]`` ACK ranges, highest first
    (None: no ACK section); the DATA fields (``message_id`` to ``offset``) are ignored unless
    ``flags`` has :data:`FLAG_DATA`. ``flags`` must agree with ``ranges``.

    The common shapes (no ACK or a one-range ACK) are packed with one struct call; the fragment
    is copied once, and checksummed together with the head when it is small. The fields are
    passed one by one (no tuples to build and splat: this runs once per datagram sent).
    """
    has_data = flags & FLAG_DATA
    if ranges is None:
        if has_data:
            head = _HEAD_DATA.pack(
                MAGIC, VERSION, TYPE_PACKET, flags, sender_epoch, receiver_epoch, packet_number,
                message_id, floor, total_length, offset,
            )  # fmt: skip
        else:
            head = HEADER.pack(
                MAGIC, VERSION, TYPE_PACKET, flags, sender_epoch, receiver_epoch, packet_number
            )
    else:
        low, high = ranges[0]
        delay_us = ack_delay_us if ack_delay_us < _U32_MAX else _U32_MAX
        if len(ranges) == 1 and high - low <= _U32_MAX:
            if has_data:
                head = _HEAD_ACK_DATA.pack(
                    MAGIC, VERSION, TYPE_PACKET, flags, sender_epoch, receiver_epoch,
                    packet_number, high, delay_us, 1, high - low,
                    message_id, floor, total_length, offset,
                )  # fmt: skip
            else:
                head = _HEAD_ACK.pack(
                    MAGIC, VERSION, TYPE_PACKET, flags, sender_epoch, receiver_epoch,
                    packet_number, high, delay_us, 1, high - low,
                )  # fmt: skip
        else:
            head = HEADER.pack(
                MAGIC, VERSION, TYPE_PACKET, flags, sender_epoch, receiver_epoch, packet_number
            ) + encode_ack(ranges, ack_delay_us)
            if has_data:
                head += DATA_HEAD.pack(message_id, floor, total_length, offset)
    if len(fragment) < _SMALL_FRAGMENT:
        body = head + fragment
        return body + _CRC.pack(_crc32c(body))
    checksum = _crc32c_extend(_crc32c(head), fragment)
    return b"".join((head, fragment, _CRC.pack(checksum)))


def encode_epoch_notice(sender_epoch: int, receiver_epoch: int, answered_pn: int = 0) -> bytes:
    """A stateless notice: "I am ``sender_epoch``; I do not know the epoch you addressed".

    ``answered_pn`` is the packet number of the datagram it answers: that datagram reached this
    incarnation, not the one it was addressed to, which tells the receiver which of its
    messages the old incarnation can never have seen.
    """
    return encode_datagram(
        TYPE_EPOCH_NOTICE, 0, sender_epoch, receiver_epoch, answered_pn, b"", b"", b""
    )


def encode_close(sender_epoch: int, receiver_epoch: int, drained: bool = False) -> bytes:
    """A CLOSE: "``sender_epoch`` ends its session with ``receiver_epoch``; drop its state".

    ``drained`` sets :data:`FLAG_DRAINED`.
    """
    flags = FLAG_DRAINED if drained else 0
    return encode_datagram(TYPE_CLOSE, flags, sender_epoch, receiver_epoch, 0, b"", b"", b"")


def quoted_packet_number_untrusted(quoted: bytes) -> tuple[int, int, int] | None:
    """``(sender epoch, receiver epoch, packet number)`` of a PACKET whose first bytes an ICMP
    error quotes back (the kernel's error queue hands them over), or None if it is none.

    The quote is truncated, so there is no CRC to check: the caller must match the epochs.
    """
    if len(quoted) < HEADER_SIZE:
        return None
    fields = cast(_HeaderFields, HEADER.unpack_from(quoted))
    magic, version, kind, _, sender, receiver, pn = fields
    if magic != MAGIC or version != VERSION or kind != TYPE_PACKET:
        return None
    return sender, receiver, pn


def encode_data_head(message_id: int, floor: int, total_length: int, offset: int) -> bytes:
    """Encode a DATA section head (the fragment bytes follow it)."""
    return DATA_HEAD.pack(message_id, floor, total_length, offset)


def decode_datagram_untrusted(data: bytes) -> Datagram:
    """Validate and decode one received datagram, or raise :class:`BadDatagram`.

    The CRC is checked first, so nothing in a corrupted datagram is looked at.
    """
    if type(data) is not bytes:
        # A driver may hand over a bytearray or memoryview; fragments keep views of the
        # datagram, so it must be immutable (and google_crc32c accepts only bytes).
        try:
            data = bytes(data)
        except TypeError:
            raise BadDatagram("datagram is not a buffer") from None
    size = len(data)
    if size < MIN_DATAGRAM:
        raise BadDatagram("truncated datagram")
    valid = _crc32c(data) == CRC32C_RESIDUE
    if not valid:
        raise CrcMismatch("CRC mismatch")
    if size >= _ACK_DATA_MIN and data[4] == _ACK_DATA and data[_RANGE_COUNT_AT] == 1:
        return _decode_ack_data(data, size)  # the common shape, in one unpack
    return _decode_general(data, size)


def _decode_general(data: bytes, size: int) -> Datagram:
    """Any datagram whose CRC is valid (``size`` is at least :data:`MIN_DATAGRAM`)."""
    fields = cast(_HeaderFields, HEADER.unpack_from(data))
    magic, version, kind, flags, sender, receiver, pn = fields
    if magic != MAGIC:
        raise BadDatagram("bad magic")
    if version != VERSION:
        raise BadDatagram(f"unsupported version {version}")
    if flags & ~_KNOWN_FLAGS:
        raise BadDatagram("unknown flags")
    if sender == 0:
        raise BadDatagram("zero sender epoch")
    dgram = Datagram(kind, flags, sender, receiver, pn)
    end = size - CRC_SIZE
    if kind in _BARE_TYPES:
        if end != HEADER_SIZE:
            raise BadDatagram("malformed notice or close")
        if kind == TYPE_CLOSE:
            if flags & ~FLAG_DRAINED or pn:
                raise BadDatagram("malformed close")
        elif flags:
            raise BadDatagram("malformed notice")
        return dgram
    if kind != TYPE_PACKET:
        raise BadDatagram(f"unknown datagram type {kind}")
    if flags & FLAG_DRAINED:
        raise BadDatagram("drained flag on a packet")
    pos = HEADER_SIZE
    if flags & FLAG_ACK:
        pos = _decode_ack(data, pos, end, dgram)
    if flags & FLAG_DATA:
        _decode_data(data, pos, end, dgram)
    elif pos != end:
        raise BadDatagram("trailing bytes")
    elif flags & FLAG_COMPRESSED:
        raise BadDatagram("compressed flag without data")
    return dgram


def _decode_ack_data(data: bytes, size: int) -> Datagram:
    """A PACKET with a one-range ACK and DATA (flags exactly ACK|DATA): the same checks as
    the general path, with every fixed field unpacked at once."""
    fields = cast(_AckDataFields, _HEAD_ACK_DATA.unpack_from(data))
    (magic, version, kind, _, sender, receiver, pn, high, delay_us, _, length,
     message_id, floor, total, offset) = fields  # fmt: skip
    if magic != MAGIC or version != VERSION or kind != TYPE_PACKET or sender == 0:
        raise BadDatagram("bad header")
    low = high - length
    if low < 0:
        raise BadDatagram("ack range below zero")
    end = size - CRC_SIZE
    pos = _HEAD_ACK_DATA_SIZE
    fragment_length = end - pos
    if offset + fragment_length > total:
        raise BadDatagram("fragment beyond message end")
    if fragment_length == 0 and total != 0:
        raise BadDatagram("empty fragment")
    if floor > message_id:
        raise BadDatagram("message floor above message id")
    fragment = data[pos:end] if fragment_length < _SMALL_FRAGMENT else memoryview(data)[pos:end]
    return Datagram(
        TYPE_PACKET, _ACK_DATA, sender, receiver, pn,
        [(low, high)], delay_us, message_id, floor, total, offset, fragment,
    )  # fmt: skip


def _decode_ack(data: bytes, pos: int, end: int, dgram: Datagram) -> int:
    if pos + ACK_HEAD.size > end:
        raise BadDatagram("truncated ack")
    high, delay_us, count, length = cast(_FourFields, ACK_HEAD.unpack_from(data, pos))
    pos += ACK_HEAD.size
    if count == 0:
        raise BadDatagram("ack without ranges")
    ranges_end: int = pos + ACK_RANGE.size * (count - 1)
    if ranges_end > end:
        raise BadDatagram("truncated ack ranges")
    low = high - length
    if low < 0:
        raise BadDatagram("ack range below zero")
    ranges = [(low, high)]
    if count == 1:  # the common case: no gaps
        dgram.ack_ranges = ranges
        dgram.ack_delay_us = delay_us
        return pos
    for gap, length in ACK_RANGE.iter_unpack(data[pos:ranges_end]):
        high = low - gap - 1
        low = high - length
        if gap < 1 or low < 0:
            raise BadDatagram("bad ack range")
        ranges.append((low, high))
    dgram.ack_ranges = ranges
    dgram.ack_delay_us = delay_us
    return ranges_end


def _decode_data(data: bytes, pos: int, end: int, dgram: Datagram) -> None:
    if pos + DATA_HEAD.size > end:
        raise BadDatagram("truncated data head")
    message_id, floor, total, offset = cast(_FourFields, DATA_HEAD.unpack_from(data, pos))
    pos += DATA_HEAD.size
    length = end - pos
    if offset + length > total:
        raise BadDatagram("fragment beyond message end")
    if length == 0 and total != 0:
        raise BadDatagram("empty fragment")
    if floor > message_id:
        raise BadDatagram("message floor above message id")
    dgram.message_id = message_id
    dgram.message_floor = floor
    dgram.total_length = total
    dgram.offset = offset
    # A small fragment is copied (cheaper than a view, and delivered as bytes anyway); a large
    # one stays a view of the datagram until reassembly joins it.
    dgram.fragment = data[pos:end] if length < _SMALL_FRAGMENT else memoryview(data)[pos:end]
