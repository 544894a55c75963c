"""Tests of rpc.calls.service: method argument, result and exception marshalling."""

from __future__ import annotations

import pytest
from schema_records import DIVIDE, NOTE, SERVICE, DivideByZero, Node

import rpc
from rpc.calls.schema import ValidationError


def test_args_travel_as_numbered_map() -> None:
    assert DIVIDE.encode_args((7, 2)) == {1: 7, 2: 2}
    assert DIVIDE.decode_args({1: 7, 2: 2, 9: "newer client"}) == (7, 2)


def test_argument_errors_name_the_parameter() -> None:
    with pytest.raises(ValidationError) as info:
        DIVIDE.encode_args((7, "2"))
    assert str(info.value) == "divide(b): expected i32, got str"
    with pytest.raises(ValidationError, match=r"divide\(\): takes 2 arguments, 1 given"):
        DIVIDE.encode_args((7,))
    with pytest.raises(ValidationError, match=r"divide\(b\): required argument is missing"):
        DIVIDE.decode_args({1: 7})
    with pytest.raises(ValidationError, match=r"divide\(a\): required argument is None"):
        DIVIDE.encode_args((None, 1))
    with pytest.raises(ValidationError, match="not a map"):
        DIVIDE.decode_args([7, 2])


def test_a_nil_argument_is_a_wrong_value_not_a_missing_one() -> None:
    with pytest.raises(ValidationError) as info:
        DIVIDE.decode_args({1: None, 2: 2})
    assert str(info.value) == "divide(a): expected i32, got None"
    with pytest.raises(ValidationError, match=r"note\(node\): expected Node \(a map\), got None"):
        NOTE.decode_args({1: "hi", 2: None})


def test_optional_params_may_be_absent() -> None:
    assert NOTE.encode_args(("hi", None)) == {1: "hi"}
    assert NOTE.decode_args({1: "hi"}) == ("hi", None)
    assert NOTE.decode_args({1: "hi", 2: {1: 3}}) == ("hi", Node(value=3))


def test_results() -> None:
    assert DIVIDE.encode_result(3.5) == 3.5
    assert DIVIDE.decode_result(3.5) == 3.5
    with pytest.raises(ValidationError, match=r"divide\(\) result: expected f64"):
        DIVIDE.decode_result("3.5")
    assert NOTE.encode_result(None) is None
    assert NOTE.decode_result(None) is None
    with pytest.raises(ValidationError, match="void method returned a value"):
        NOTE.encode_result(1)
    for _ in range(2):  # the path is prefixed once per error, not accumulated
        with pytest.raises(ValidationError) as info:
            DIVIDE.encode_result("3.5")
        assert str(info.value) == "divide() result: expected f64, got str"


def test_declared_exceptions_round_trip() -> None:
    exc = DivideByZero(dividend=7)
    encoded = DIVIDE.encode_exception(exc)
    assert encoded == (1, {1: 7})
    decoded = DIVIDE.decode_exception(*encoded)
    assert isinstance(decoded, DivideByZero)
    assert decoded.dividend == 7
    assert decoded.outcome is rpc.CallOutcome.EXECUTED
    assert "dividend=7" in str(decoded)


def test_undeclared_exceptions_are_not_encoded() -> None:
    assert DIVIDE.encode_exception(ValueError("x")) is None
    assert NOTE.encode_exception(DivideByZero(dividend=1)) is None
    with pytest.raises(ValidationError, match="undeclared exception number 2"):
        DIVIDE.decode_exception(2, {1: 7})


def test_service_lookup() -> None:
    assert SERVICE.method(4) is DIVIDE
    assert SERVICE.method(5) is NOTE
    assert SERVICE.method(6) is None
    assert DIVIDE.python_name == "divide"
    assert hash(SERVICE) == hash(rpc.ServiceSpec("Calc", 1, ()))


def test_plain_values_skip_conversion_and_others_are_still_checked() -> None:
    # A method whose one parameter and result are plain (bytes): values of exactly that type
    # pass as they are, anything else takes the checked path with the same errors as before.
    put = rpc.MethodSpec[bytes](
        name="put",
        number=1,
        params=(rpc.Param(1, "blob", rpc.schema.BYTES),),
        result=rpc.schema.BYTES,
    )
    blob = b"payload"
    assert put.encode_args((blob,))[1] is blob  # type: ignore[index]
    assert put.encode_args((bytearray(b"ab"),)) == {1: b"ab"}
    assert put.decode_args({1: blob})[0] is blob
    assert put.decode_result(blob) is blob
    with pytest.raises(ValidationError, match=r"put\(blob\): expected bytes, got str"):
        put.encode_args(("text",))
    with pytest.raises(ValidationError, match=r"put\(blob\): required argument is None"):
        put.encode_args((None,))
    with pytest.raises(ValidationError, match=r"put\(\): takes 1 arguments, 2 given"):
        put.encode_args((blob, blob))
    with pytest.raises(ValidationError, match=r"put\(blob\): required argument is missing"):
        put.decode_args({2: blob})
    with pytest.raises(ValidationError, match=r"put\(blob\): expected bytes, got str"):
        put.decode_args({1: "text"})
    with pytest.raises(ValidationError, match=r"put\(\) result: expected bytes, got int"):
        put.decode_result(3)
    bounded = rpc.MethodSpec[None](
        name="small",
        number=2,
        params=(rpc.Param(1, "blob", rpc.schema.Bytes(max_len=2)),),
        result=None,
    )
    with pytest.raises(ValidationError, match=r"small\(blob\): 7 bytes exceed bytes<2>"):
        bounded.encode_args((blob,))  # a bounded type is never plain
    assert bounded.encode_result(None) is None
    with pytest.raises(ValidationError, match="void method returned a value"):
        bounded.decode_result(blob)
