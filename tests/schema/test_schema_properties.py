"""Property tests: round trips through msgpack, and hostile input only raises ValidationError."""

from __future__ import annotations

import contextlib

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from schema_records import BAG, DIVIDE, NODE, NOTE, SHAPE, Bag, Color, Node, Point, Shape

from rpc.calls import schema
from rpc.calls.schema import ValidationError

texts16 = st.text(max_size=16)
i32s = st.integers(-(2**31), 2**31 - 1)
points = st.builds(Point, x=i32s, y=i32s)
shapes = st.one_of(
    st.builds(Shape, point=points),
    st.builds(Shape, radius=st.floats(allow_nan=False)),
)
bags = st.builds(
    Bag,
    names=st.lists(texts16, max_size=4),
    tags=st.frozensets(st.sampled_from(Color)),
    where=st.dictionaries(points, st.text(), max_size=5),
    counts=st.dictionaries(st.text(), st.integers(0, 255), max_size=3),
    blob=st.binary(max_size=32),
    shape=st.none() | shapes,
)
nodes = st.recursive(
    st.builds(Node, value=st.integers(-(2**63), 2**63 - 1)),
    lambda inner: st.builds(Node, value=st.integers(0, 9), label=st.none() | st.text(max_size=8),
                            next=inner),
    max_leaves=20,
)


def through_msgpack(wire: object) -> object:
    packed = msgpack.packb(wire, use_bin_type=True)
    return msgpack.unpackb(packed, raw=False, strict_map_key=False)


@given(bags)
def test_bags_round_trip(bag: Bag) -> None:
    assert BAG.decode(through_msgpack(BAG.encode(bag))) == bag


@given(nodes)
def test_recursive_nodes_round_trip(node: Node) -> None:
    assert NODE.decode(through_msgpack(NODE.encode(node))) == node


@given(i32s, i32s)
def test_args_round_trip(a: int, b: int) -> None:
    assert DIVIDE.decode_args(through_msgpack(DIVIDE.encode_args((a, b)))) == (a, b)


# Anything msgpack can carry, including the awkward bits: bools, huge ints, nested maps.
garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(
        st.integers(-3, 10) | st.text(max_size=3) | st.booleans() | st.binary(max_size=3),
        inner,
        max_size=5,
    ),
    max_leaves=40,
)

DESCRIPTORS: list[schema.TypeDesc] = [
    BAG,
    NODE,
    SHAPE,
    schema.MapOf(schema.SetOf(schema.I8), schema.ListOf(schema.F32)),
    schema.SetOf(BAG.fields[2].type),
    schema.EnumOf(Color),
]


@settings(max_examples=300)
@given(garbage)
def test_decoding_garbage_only_raises_validation_error(wire: object) -> None:
    # Whatever decodes must be a valid value: encoding it again succeeds.
    for desc in DESCRIPTORS:
        with contextlib.suppress(ValidationError):
            desc.encode(desc.decode(wire, "x"), "x")
    for method in (DIVIDE, NOTE):
        with contextlib.suppress(ValidationError):
            method.encode_args(method.decode_args(wire))
        with contextlib.suppress(ValidationError):
            method.encode_result(method.decode_result(wire))
        with contextlib.suppress(ValidationError):
            exc = method.decode_exception(1, wire)
            assert method.encode_exception(exc) is not None


@given(garbage)
def test_encoding_garbage_only_raises_validation_error(value: object) -> None:
    for desc in DESCRIPTORS:
        with contextlib.suppress(ValidationError):
            desc.decode(through_msgpack(desc.encode(value, "x")), "x")
