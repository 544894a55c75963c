"""Unit tests of the type descriptors in rpc.schema: validation, conversion, error paths."""

from __future__ import annotations

import math

import msgpack
import pytest
from schema_records import BAG, COLOR, NODE, POINT, SHAPE, Bag, Color, Node, Point, Shape

from rpc.calls import schema
from rpc.calls.schema import ValidationError


def wire_trip(desc: schema.TypeDesc, value: object) -> object:
    """Encode, pack, unpack and decode ``value`` the way the runtime does."""
    packed = msgpack.packb(desc.encode(value, "v"), use_bin_type=True)
    return desc.decode(msgpack.unpackb(packed, raw=False, strict_map_key=False), "v")


@pytest.mark.parametrize(
    ("desc", "low", "high"),
    [
        (schema.I8, -128, 127),
        (schema.I16, -32768, 32767),
        (schema.I32, -(2**31), 2**31 - 1),
        (schema.I64, -(2**63), 2**63 - 1),
        (schema.U8, 0, 255),
        (schema.U16, 0, 65535),
        (schema.U32, 0, 2**32 - 1),
        (schema.U64, 0, 2**64 - 1),
    ],
)
def test_integer_ranges_are_enforced_both_ways(desc: schema.TypeDesc, low: int, high: int) -> None:
    assert wire_trip(desc, low) == low
    assert wire_trip(desc, high) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(ValidationError, match="out of range"):
            desc.encode(bad, "x")
        with pytest.raises(ValidationError, match="out of range"):
            desc.decode(bad, "x")


@pytest.mark.parametrize("bad", [True, False, 1.0, "1", None, b"1"])
def test_integers_reject_bool_and_other_types(bad: object) -> None:
    with pytest.raises(ValidationError, match="expected i32"):
        schema.I32.encode(bad, "f(a)")
    with pytest.raises(ValidationError, match="expected i32"):
        schema.I32.decode(bad, "f(a)")


def test_int_enum_members_encode_as_plain_ints() -> None:
    encoded = schema.I32.encode(Color.BLUE)
    assert encoded == 10
    assert type(encoded) is int


def test_bool_accepts_only_bools() -> None:
    assert schema.BOOL.encode(True) is True
    with pytest.raises(ValidationError, match="expected bool"):
        schema.BOOL.encode(1)
    with pytest.raises(ValidationError, match="expected bool"):
        schema.BOOL.decode(0)


def test_floats_accept_ints_and_check_f32_range() -> None:
    assert schema.F64.encode(3) == 3.0
    assert type(schema.F64.encode(3)) is float
    assert schema.F32.encode(1e38) == 1e38
    assert math.isinf(schema.F32.encode(math.inf))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="out of range for f32"):
        schema.F32.encode(1e39)
    with pytest.raises(ValidationError, match="out of range for f64"):
        schema.F64.encode(10**400)
    with pytest.raises(ValidationError, match="expected f64"):
        schema.F64.decode(True)


def test_string_and_bytes_bounds() -> None:
    bounded = schema.String(3)
    assert bounded.encode("abc") == "abc"
    with pytest.raises(ValidationError, match="exceeds string<3>"):
        bounded.encode("abcd")
    with pytest.raises(ValidationError, match="exceeds string<3>"):
        bounded.decode("abcd")
    with pytest.raises(ValidationError, match="lone surrogate"):
        schema.STRING.encode("\udc80")
    with pytest.raises(ValidationError, match="expected str"):
        schema.STRING.decode(b"abc")
    assert schema.Bytes(2).encode(bytearray(b"ab")) == b"ab"
    with pytest.raises(ValidationError, match="exceed bytes<2>"):
        schema.Bytes(2).decode(b"abc")
    with pytest.raises(ValidationError, match="expected bytes"):
        schema.BYTES.decode("abc")


class _BytesSubclass(bytes):
    pass


class _StrSubclass(str):
    pass


def test_bounds_are_inclusive_and_only_exact_types_take_the_fast_path() -> None:
    assert schema.Bytes(2).decode(b"ab") == b"ab"
    assert schema.Bytes(2).encode(b"ab") == b"ab"
    assert schema.String(2).decode("ab") == "ab"
    with pytest.raises(ValidationError, match="exceed bytes<2>"):
        schema.Bytes(2).encode(b"abc")
    with pytest.raises(ValidationError, match="exceed bytes<2>"):
        schema.Bytes(2).encode(bytearray(b"abc"))
    converted = schema.BYTES.encode(_BytesSubclass(b"ab"))
    assert converted == b"ab"
    assert type(converted) is bytes
    with pytest.raises(ValidationError, match="expected bytes"):
        schema.BYTES.decode(_BytesSubclass(b"ab"))
    with pytest.raises(ValidationError, match="expected str"):
        schema.STRING.decode(_StrSubclass("ab"))
    assert schema.Bytes(0).decode(b"") == b""
    with pytest.raises(ValidationError, match="exceeds string<0>"):
        schema.String(0).decode("a")


def test_record_round_trip_with_every_container() -> None:
    bag = Bag(
        names=["a", "b"],
        tags=frozenset({Color.RED, Color.BLUE}),
        where={Point(x=1, y=2): "here", Point(x=-1): "there"},
        counts={"k": 255},
        blob=b"\x00\xff",
        shape=Shape(point=Point(x=5)),
    )
    assert wire_trip(BAG, bag) == bag
    assert wire_trip(BAG, Bag()) == Bag()


def test_maps_with_record_keys_travel_as_pairs() -> None:
    encoded = BAG.encode(Bag(where={Point(x=1, y=2): "p"}))
    assert encoded == {1: [], 2: [], 3: [[{1: 1, 2: 2}, "p"]], 4: {}, 5: b""}


def test_error_paths_name_the_offending_element() -> None:
    with pytest.raises(ValidationError) as info:
        BAG.encode(Bag(names=["ok", "x" * 17]), "put(bag)")
    assert str(info.value) == "put(bag).names[1]: string of 17 characters exceeds string<16>"
    with pytest.raises(ValidationError) as info:
        BAG.decode({4: {"k": 256}}, "put(bag)")
    assert str(info.value) == "put(bag).counts['k']: 256 is out of range for u8"
    with pytest.raises(ValidationError) as info:
        BAG.encode(Bag(counts={"a": 1, "b": 2, "c": 3, "d": 4}), "r")
    assert str(info.value) == "r.counts: 4 elements exceed map<string, u8, 3>"


def test_missing_fields_take_defaults_and_unknown_fields_are_ignored() -> None:
    assert POINT.decode({1: 7, 99: "from the future"}) == Point(x=7, y=0)
    with pytest.raises(ValidationError, match=r"\.x: required field 1 is missing"):
        POINT.decode({2: 7})
    with pytest.raises(ValidationError, match=r"\.x: required field is None"):
        POINT.encode(Point(x=None))  # type: ignore[arg-type]


def test_optional_fields_are_left_off_the_wire() -> None:
    assert NODE.encode(Node(value=1)) == {1: 1}
    assert NODE.decode({1: 1}) == Node(value=1)


def test_recursive_records_round_trip_and_deep_nesting_is_rejected() -> None:
    chain = Node(value=0)
    for i in range(1, 50):
        chain = Node(value=i, next=chain)
    assert wire_trip(NODE, chain) == chain
    wire: dict[int, object] = {1: 0}
    for i in range(5000):
        wire = {1: i, 3: wire}
    with pytest.raises(ValidationError, match="nested deeper"):
        NODE.decode(wire, "n")
    for i in range(5000):
        chain = Node(value=i, next=chain)
    with pytest.raises(ValidationError, match="nested deeper"):
        NODE.encode(chain, "n")


def test_cyclic_values_are_rejected() -> None:
    items: list[object] = []
    items.append(items)
    nested = schema.ListOf(schema.ListOf(schema.ListOf(schema.I32)))
    with pytest.raises(ValidationError, match="expected i32"):
        nested.encode(items)
    node = Node(value=1)
    node.next = node
    with pytest.raises(ValidationError, match="nested deeper"):
        NODE.encode(node)


def test_union_needs_exactly_one_member() -> None:
    assert SHAPE.encode(Shape(radius=2.0)) == {2: 2.0}
    assert SHAPE.decode({1: {1: 3}}) == Shape(point=Point(x=3))
    with pytest.raises(ValidationError, match="exactly one field set, 2 are set"):
        SHAPE.encode(Shape(radius=1.0, point=Point(x=1)))
    with pytest.raises(ValidationError, match="exactly one field set, 0 are set"):
        SHAPE.encode(Shape())
    with pytest.raises(ValidationError, match="unknown member 7 of union Shape"):
        SHAPE.decode({7: 1})
    with pytest.raises(ValidationError, match="one-entry map"):
        SHAPE.decode({1: {1: 3}, 2: 1.0})


def test_enums_are_closed() -> None:
    assert COLOR.encode(Color.GREEN) == 2
    assert COLOR.encode(2) == 2
    assert COLOR.decode(10) is Color.BLUE
    with pytest.raises(ValidationError, match="3 is not a value of enum Color"):
        COLOR.decode(3)
    with pytest.raises(ValidationError, match="expected Color"):
        COLOR.decode(True)


def test_records_reject_wrong_classes() -> None:
    with pytest.raises(ValidationError, match="expected Point, got dict"):
        POINT.encode({"x": 1})
    with pytest.raises(ValidationError, match="expected Point"):
        POINT.decode([1, 2])


def test_hashability_follows_frozen_dataclasses() -> None:
    assert POINT.hashable
    assert not NODE.hashable
    assert not schema.ListOf(schema.I8).hashable
    assert schema.SetOf(schema.I8).hashable
    assert schema.STRING.hashable
