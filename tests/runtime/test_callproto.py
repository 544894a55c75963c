"""The RPC-layer envelopes round-trip, and untrusted input raises only ProtocolError."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpc.calls import callproto
from rpc.calls.callproto import Status
from rpc.errors import ProtocolError


def test_call_round_trips() -> None:
    data = callproto.encode_call(7, "Calc", 2, 3, 1500, callproto.FLAG_ONEWAY, 5, 99, {1: "x"})
    message = callproto.unpack_untrusted(data)
    assert callproto.message_kind(message) == callproto.KIND_CALL
    call = callproto.decode_call_untrusted(message)
    assert call == callproto.CallMessage(7, "Calc", 2, 3, 1500, callproto.FLAG_ONEWAY, 5, 99,
                                         {1: "x"})


def test_call_without_deadline_has_nil_budget() -> None:
    data = callproto.encode_call(1, "S", 1, 0, None, 0, 0, 0, {})
    assert callproto.decode_call_untrusted(callproto.unpack_untrusted(data)).budget_ms is None


def test_reply_round_trips() -> None:
    data = callproto.encode_reply(3, Status.VERSION_MISMATCH, [1, 4])
    message = callproto.unpack_untrusted(data)
    assert callproto.message_kind(message) == callproto.KIND_REPLY
    assert callproto.decode_reply_untrusted(message) == (3, Status.VERSION_MISMATCH, [1, 4])


BIG = callproto.LARGE_BIN


@pytest.mark.parametrize("body", [None, 3, "text", b"small", [1, b"x"], b"b" * BIG])
def test_ok_reply_encodes_exactly_as_a_reply_with_status_ok(body: object) -> None:
    assert callproto.encode_ok_reply(11, body) == callproto.encode_reply(11, Status.OK, body)
    assert callproto.encode_ok_reply(11, body) == msgpack.packb([callproto.KIND_REPLY, 11, 0, body])


@pytest.mark.parametrize("size", [BIG - 1, BIG, 3 * BIG + 7])
def test_spliced_large_bins_encode_exactly_as_msgpack_packs_them(size: int) -> None:
    # Large bins are joined in rather than packed; the bytes must be the packer's own, next to
    # small bins, long strings (packed, longer than LARGE_BIN) and nested bins (not spliced).
    blob = bytes(range(256)) * (size // 256) + b"t" * (size % 256)
    args = {1: blob, 2: "s" * BIG, 3: [blob], 4: b"small", 5: blob}
    call = callproto.encode_call(9, "Bulk", 1, 2, None, 0, 3, 4, args)
    assert call == msgpack.packb([callproto.KIND_CALL, 9, "Bulk", 1, 2, None, 0, 3, 4, args])
    decoded = callproto.decode_call_untrusted(callproto.unpack_untrusted(call))
    assert decoded.args == args
    assert type(decoded.args[1]) is bytes  # type: ignore[index]
    reply = callproto.encode_reply(5, Status.OK, blob)
    assert reply == msgpack.packb([callproto.KIND_REPLY, 5, int(Status.OK), blob])
    body = callproto.decode_reply_untrusted(callproto.unpack_untrusted(reply)).body
    assert body == blob
    assert type(body) is bytes


@pytest.mark.parametrize(
    ("encode", "kind"),
    [
        (callproto.encode_cancel, callproto.KIND_CANCEL),
        (callproto.encode_ping, callproto.KIND_PING),
    ],
)
def test_short_messages_carry_their_call_number(encode: object, kind: int) -> None:
    assert callable(encode)
    message = callproto.unpack_untrusted(encode(2**64 - 1))
    assert callproto.message_kind(message) == kind
    assert callproto.decode_call_number_untrusted(message) == 2**64 - 1


@pytest.mark.parametrize(
    "value",
    [
        [1, -1, "S", 1, 0, None, 0, 0, 0, {}],  # negative call number
        [1, 1, 5, 1, 0, None, 0, 0, 0, {}],  # service not a string
        [1, 1, "S", 1, 0, None, 0x80, 0, 0, {}],  # unknown flag
        [1, 1, "S", 1, 0, 1.5, 0, 0, 0, {}],  # budget not an integer
        [1, 1, "S" * 300, 1, 0, None, 0, 0, 0, {}],  # absurd service name
        [1, 1, "S", True, 0, None, 0, 0, 0, {}],  # bool is not an int
        [1, 1, "S", 1, 0, None, 0, 0, 0],  # too short
    ],
)
def test_malformed_calls_are_protocol_errors(value: list[object]) -> None:
    message = callproto.unpack_untrusted(msgpack.packb(value))
    with pytest.raises(ProtocolError):
        callproto.decode_call_untrusted(message)


@pytest.mark.parametrize(
    "value", [[2, 1, 99, None], [2, 1, "0", None], [2, -4, 0, None], [2, 1, 0]]
)
def test_malformed_replies_are_protocol_errors(value: list[object]) -> None:
    with pytest.raises(ProtocolError):
        callproto.decode_reply_untrusted(callproto.unpack_untrusted(msgpack.packb(value)))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x91", msgpack.packb({1: 2}), b"\x92\x01"])
def test_undecodable_bytes_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        callproto.unpack_untrusted(data)


def _decode_any(data: bytes) -> None:
    message = callproto.unpack_untrusted(data)
    decoders = {
        callproto.KIND_CALL: callproto.decode_call_untrusted,
        callproto.KIND_REPLY: callproto.decode_reply_untrusted,
        callproto.KIND_CANCEL: callproto.decode_call_number_untrusted,
        callproto.KIND_PING: callproto.decode_call_number_untrusted,
    }
    decoder = decoders.get(callproto.message_kind(message))
    if decoder is not None:
        decoder(message)


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):  # anything else fails the test
        _decode_any(data)


_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=5)
    | st.binary(max_size=5) | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.integers(0, 5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(st.integers(1, 4), st.lists(_msgpack_values, max_size=11))
def test_random_arrays_raise_only_protocol_error(kind: int, rest: list[object]) -> None:
    try:
        data = msgpack.packb([kind, *rest])
    except (OverflowError, ValueError):
        return  # msgpack cannot even encode it, so no peer can send it
    with contextlib.suppress(ProtocolError):  # anything else fails the test
        _decode_any(data)


@given(st.integers(1, 14), _msgpack_values)
def test_hostile_arguments_raise_only_validation_error(method_number: int, wire: object) -> None:
    """What the server does with a CALL's args: anything odd is a ValidationError."""
    from rpc.calls.schema import ValidationError
    from tests.runtime.lab_service import LAB_V2

    method = LAB_V2.method(method_number)
    assert method is not None
    try:
        data = msgpack.packb({1: wire, 2: wire, 3: wire, 4: wire})
    except (OverflowError, ValueError):
        return
    args = msgpack.unpackb(data, raw=False, strict_map_key=False)
    with contextlib.suppress(ValidationError):
        method.decode_args(args)


#: Values at and beyond each field's bounds, and values of the wrong type.
EDGES = st.sampled_from(
    [0, 1, 3, 4, 2**32 - 1, 2**32, 2**64 - 1, 2**64, -1, True, None, 1.0, "S", b"S", [1]]
)


def _field_ok(value: object, high: int) -> bool:
    return type(value) is int and 0 <= value <= high


def _reference_accepts(fields: list[object]) -> bool:
    """The CALL rules of docs/rpc-layer.md §1, one field at a time."""
    call_no, service, version, method, budget, flags, floor, epoch = fields
    return (
        _field_ok(call_no, 2**64 - 1) and type(service) is str
        and _field_ok(version, 2**32 - 1) and _field_ok(method, 2**32 - 1)
        and (budget is None or _field_ok(budget, 2**32 - 1))
        and _field_ok(flags, callproto.FLAG_ONEWAY | callproto.FLAG_IDEMPOTENT)
        and _field_ok(floor, 2**64 - 1) and _field_ok(epoch, 2**64 - 1)
    )


@given(st.lists(EDGES, min_size=8, max_size=8), st.booleans())
def test_call_fast_check_agrees_with_the_field_rules(fields: list[object], named: bool) -> None:
    if named:
        fields[1] = "Calc"
    message: list[object] = [callproto.KIND_CALL, *fields, {}]
    try:  # the server's fast check sees what msgpack can carry (no 2**64, no float as int)
        packed: bytes | None = msgpack.packb(message)
    except OverflowError:
        packed = None
    if _reference_accepts(fields):
        assert list(callproto.decode_call_untrusted(message)) == [*fields, {}]
        assert list(callproto.decode_call_fields_untrusted(message)) == [*fields, {}]
        assert packed is not None
        assert list(callproto.decode_untrusted(packed)) == [*fields, {}]
    else:
        with pytest.raises(ProtocolError) as info:
            callproto.decode_call_untrusted(message)
        assert str(info.value) != "malformed CALL"  # the precise complaint was found
        with pytest.raises(ProtocolError) as fields_info:
            callproto.decode_call_fields_untrusted(message)
        assert str(fields_info.value) == str(info.value)
        if packed is not None:
            with pytest.raises(ProtocolError) as fast_info:
                callproto.decode_untrusted(packed)
            assert str(fast_info.value) == str(info.value)
