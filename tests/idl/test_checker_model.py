"""What the checker builds when the input is valid: numbers, hashability, aliases, values."""

from __future__ import annotations

from idl import model as m
from idl.checker import CheckResult, auto_method_number, check_files


def check_source(text: str) -> CheckResult:
    result = check_files(["t.idl"], read=lambda path: text)
    assert result.diagnostics == []
    return result


def definitions(text: str) -> dict[str, m.Definition]:
    (module,) = check_source(text).modules
    return {d.name: d for d in module.definitions}


def test_derived_method_numbers_survive_reordering() -> None:
    first = definitions("service S { void alpha(); 7: void beta(); void gamma(); }")["S"]
    second = definitions("service S { void gamma(); void alpha(); 7: void beta(); }")["S"]
    assert isinstance(first, m.Service)
    assert isinstance(second, m.Service)
    numbers = {meth.name: meth.number for meth in first.methods}
    assert numbers == {meth.name: meth.number for meth in second.methods}
    assert numbers["beta"] == 7
    assert numbers["alpha"] == auto_method_number("alpha") > 0xFFFF


def test_records_used_as_keys_become_hashable_transitively() -> None:
    defs = definitions(
        "struct Inner { 1: i32 x; }\n"
        "struct Outer { 1: Inner inner; 2: set<Inner> more; }\n"
        "struct Free { 1: list<i32> xs; }\n"
        "struct User { 1: map<Outer, Free> index; }\n"
    )
    hashable = {name: d.hashable for name, d in defs.items() if isinstance(d, m.Record)}
    assert hashable == {"Inner": True, "Outer": True, "Free": False, "User": False}


def test_typedefs_resolve_in_any_order_and_keep_bounds() -> None:
    defs = definitions("struct A { 1: Names names; }\ntypedef list<Name, 3> Names;\n"
                       "typedef string<8> Name;\n")
    record = defs["A"]
    assert isinstance(record, m.Record)
    field_type = m.resolve_alias(record.fields[0].type)
    assert isinstance(field_type, m.ListType)
    assert field_type.bound == 3
    assert m.resolve_alias(field_type.elem) == m.BaseType("string", 8)


def test_enum_values_and_constant_references() -> None:
    defs = definitions(
        "enum E { A, B = 5, C }\n"
        "const E FIRST = E.A\n"
        "const i64 BIG = LIMIT\n"
        "const i64 LIMIT = 0x10\n"
        "const map<E, list<i64>> TABLE = {E.C: [LIMIT, -1]}\n"
    )
    enum = defs["E"]
    assert isinstance(enum, m.Enum)
    assert [(v.name, v.value) for v in enum.values] == [("A", 0), ("B", 5), ("C", 6)]
    big, table = defs["BIG"], defs["TABLE"]
    assert isinstance(big, m.Const)
    assert big.value == 16
    assert isinstance(table, m.Const)
    assert table.value == m.MapValue(((m.EnumMember(enum, enum.values[2]),
                                       m.ListValue((16, -1))),))


def test_optional_fields_defaults_and_requiredness() -> None:
    record = definitions(
        "struct R { 1: i32 a; 2: optional i32 b; 3: i32 c = 3; 4: required i32 d; }"
    )["R"]
    assert isinstance(record, m.Record)
    assert [(f.name, f.optional, f.default) for f in record.fields] == [
        ("a", False, None), ("b", True, None), ("c", False, 3), ("d", False, None),
    ]
