"""Generated records survive encode -> msgpack -> decode unchanged, for every golden module."""

from __future__ import annotations

import msgpack
import pytest
from generated_modules import ValueStrategies, load_modules, record_descriptors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rpc
from codegen.regen_golden import EXPECTED_DIR
from rpc.calls import schema

MODULES = load_modules(EXPECTED_DIR, ["shapes", "drawing", "everything", "calculator"])
DESCRIPTORS = [
    (f"{module_name}.{name}", desc)
    for module_name, module in MODULES.items()
    for name, desc in record_descriptors(module)
]
METHODS = [
    (f"{module_name}.{spec.name}_v{spec.version}.{method.name}", method)
    for module_name, module in MODULES.items()
    for spec in vars(module).values() if isinstance(spec, rpc.ServiceSpec)
    for method in spec.methods
]
STRATEGIES = ValueStrategies()


def over_the_wire(wire: object) -> object:
    packed = msgpack.packb(wire, use_bin_type=True)
    return msgpack.unpackb(packed, raw=False, strict_map_key=False)


def same(a: object, b: object) -> bool:
    """Equality, except that exceptions (which compare by identity) compare by fields."""
    if isinstance(a, BaseException):
        names = getattr(a, "__dataclass_fields__", {})
        return type(a) is type(b) and all(same(getattr(a, n), getattr(b, n)) for n in names)
    return a == b


def test_every_golden_record_is_covered() -> None:
    names = {name for name, _ in DESCRIPTORS}
    assert {"shapes._T_Point", "everything._T_Node", "everything._T_Failure",
            "drawing._T_Layer", "calculator._T_Step"} <= names
    assert len(METHODS) >= 20


@pytest.mark.parametrize(("name", "desc"), DESCRIPTORS, ids=[n for n, _ in DESCRIPTORS])
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_records_round_trip(name: str, desc: schema.TypeDesc, data: st.DataObject) -> None:
    value = data.draw(STRATEGIES.of(desc))
    decoded = desc.decode(over_the_wire(desc.encode(value, name)), name)
    assert same(decoded, value)


@pytest.mark.parametrize(("name", "method"), METHODS, ids=[n for n, _ in METHODS])
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_method_args_and_results_round_trip(
    name: str, method: rpc.MethodSpec[object], data: st.DataObject
) -> None:
    args = tuple(
        data.draw(st.none() | STRATEGIES.of(p.type) if p.optional else STRATEGIES.of(p.type))
        for p in method.params
    )
    assert method.decode_args(over_the_wire(method.encode_args(args))) == args
    if method.result is not None:
        result = data.draw(STRATEGIES.of(method.result))
        assert same(method.decode_result(over_the_wire(method.encode_result(result))), result)
    for number, exc_desc in method.throws:
        exc = data.draw(STRATEGIES.of(exc_desc))
        assert isinstance(exc, BaseException)
        encoded = method.encode_exception(exc)
        assert encoded is not None
        assert encoded[0] == number
        assert same(method.decode_exception(number, over_the_wire(encoded[1])), exc)


def test_defaults_from_the_idl_are_the_dataclass_defaults() -> None:
    everything = MODULES["everything"]
    containers = everything.Containers(cube=[], grid={}, families=frozenset(), by_key={},
                                       bounded_names=[])
    assert containers.numbers == [1, 2, 3]
    assert containers.weights == {everything.Mode.FAST: 0.5, everything.Mode.SAFE: 1.0}
    assert containers.numbers is not everything.Containers(
        cube=[], grid={}, families=frozenset(), by_key={}, bounded_names=[]).numbers
    assert everything.Scalars(also_blob=b"", short_blob=b"").text == 'tab\there "quoted" \\ café'
    assert everything.SAME_ANSWER == everything.ANSWER == 42
    assert MODULES["drawing"].Layer(name="l", shapes_=[], pins=frozenset()).highlights == \
        frozenset({MODULES["shapes"].Color.RED, MODULES["shapes"].Color.BLUE})


def test_keyword_names_are_made_safe() -> None:
    everything = MODULES["everything"]
    awkward = everything.Awkward(class_=1, from_="x", Mode_=everything.Mode.SAFE, self="me")
    assert everything._T_Awkward.encode(awkward) == {1: 1, 2: "x", 4: 2, 5: "me"}
    failure = everything.Failure(message_="boom", code=7)
    assert isinstance(failure, rpc.ApplicationError)
    assert failure.outcome is rpc.CallOutcome.EXECUTED
    assert "boom" in str(failure)
    with pytest.raises(everything.Failure):
        raise failure
    method = everything._M_Everything_v3_import
    assert method.python_name == "import_"
    assert method.encode_args((1, 2.0, "c")) == {1: 1, 2: 2.0, 3: "c"}


def test_hashable_records_are_frozen_and_others_are_not() -> None:
    shapes, everything = MODULES["shapes"], MODULES["everything"]
    assert hash(shapes.Point(x=1)) == hash(shapes.Point(x=1, y=0))
    assert hash(everything.Key(tenant="t", id=1, modes=frozenset()))
    with pytest.raises(TypeError):
        hash(everything.Node(value=1, children=[]))


def test_bounds_are_enforced_on_both_sides() -> None:
    calculator = MODULES["calculator"]
    step = calculator.Step(operation=calculator.Operation.ADD, left=1, right=2, result=3,
                           note="x" * 65)
    with pytest.raises(schema.ValidationError, match="exceeds string<64>"):
        calculator._M_Calculator_v1_record.encode_args((step,))
    wire = {1: {1: 1, 2: 1, 3: 2, 4: 3, 5: "x" * 65}}
    with pytest.raises(schema.ValidationError, match=r"record\(step\)\.note"):
        calculator._M_Calculator_v1_record.decode_args(wire)
