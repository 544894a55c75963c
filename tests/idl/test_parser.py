"""Parser tests: the syntax tree, positions, doc comments and syntax-error wording."""

from __future__ import annotations

import pytest

from idl import syntax as s
from idl.parser import parse


def parse_ok(text: str) -> s.Document:
    result = parse(text, "t.idl")
    assert result.diagnostics == ()
    assert result.document is not None
    return result.document


def only_error(text: str) -> str:
    result = parse(text, "t.idl")
    assert result.document is None
    (diagnostic,) = result.diagnostics
    return f"{diagnostic.line}:{diagnostic.column}: {diagnostic.message}"


def test_doc_comments_attach_to_the_next_definition_only() -> None:
    document = parse_ok(
        "/// Line one.\n"
        "/// Line two.\n"
        "struct A {\n"
        "    /// The x.\n"
        "    1: i32 x; /// not a doc of y\n"
        "    2: i32 y;\n"
        "}\n"
        "// plain comment\n"
        "enum E { A }\n"
    )
    record, enum = document.definitions
    assert isinstance(record, s.Record)
    assert record.doc == "Line one.\nLine two."
    assert [f.doc for f in record.fields] == ["The x.", ""]
    assert isinstance(enum, s.Enum)
    assert enum.doc == ""


def test_method_syntax_variants() -> None:
    document = parse_ok(
        "service S version 7 {\n"
        "  1: idempotent i32 add(1: i32 a, 2: optional i32 b) throws (1: E e, F),\n"
        "  oneway void ping()\n"
        "}\n"
    )
    (service,) = document.definitions
    assert isinstance(service, s.Service)
    assert service.version == 7
    add, ping = service.methods
    assert (add.number, add.idempotent, add.oneway) == (1, True, False)
    assert [p.requiredness for p in add.params] == [None, "optional"]
    assert [(t.number, t.name) for t in add.throws] == [(1, "e"), (None, None)]
    assert (ping.number, ping.oneway, ping.result) == (None, True, None)


def test_values_and_types() -> None:
    document = parse_ok(
        'const map<string, list<i32, 4>> M = {"a": [0x10, -2], \'b\': []}\n'
        "const f64 F = -1.5e3\n"
        'const string S = "tab\\t\\u00e9"\n'
    )
    m_const, f_const, s_const = document.definitions
    assert isinstance(m_const, s.Const)
    assert isinstance(m_const.type, s.MapType)
    assert isinstance(m_const.type.value, s.ListType)
    assert m_const.type.value.bound == 4
    assert isinstance(m_const.value, s.MapValue)
    key, items = m_const.value.pairs[0]
    assert key == s.StringValue(s.Pos(1, 38), "a")
    assert isinstance(items, s.ListValue)
    assert [v.value for v in items.items if isinstance(v, s.IntValue)] == [16, -2]
    assert isinstance(f_const, s.Const)
    assert f_const.value == s.FloatValue(s.Pos(2, 15), -1500.0)
    assert isinstance(s_const, s.Const)
    assert s_const.value == s.StringValue(s.Pos(3, 18), "tab\t\u00e9")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("struct A { 1: i32 x foo }",
         "1:21: expected ',', ';', '=', '}' or a number after 'x', found 'foo'"),
        ("enum { A }", "1:6: expected a name after 'enum', found '{'"),
        ("struct A {", "1:11: expected '}' or a number after '{', found end of file"),
        ('const string s = "abc', "1:18: unterminated string"),
        ("struct A {} /* open", "1:13: unterminated comment: '/*' without '*/'"),
        ("struct A { 1: i32 x = 'a\\q' }", "1:23: unknown escape sequence '\\q' in string"),
        ('const string s = "\\ud800"', "1:18: invalid escape '\\ud800': a lone surrogate"),
        ("struct A { 1: i32 x } ?", "1:23: unexpected character '?'"),
    ],
)
def test_syntax_errors_read_plainly(text: str, expected: str) -> None:
    assert only_error(text) == expected


def test_deep_nesting_is_a_diagnostic() -> None:
    text = "const list<i32> L = " + "[" * 5000 + "]" * 5000
    message = only_error(text)
    assert "nested too deeply" in message


def test_thrift_block_doc_comments() -> None:
    document = parse_ok(
        "/**\n"
        " * Ported from Thrift.\n"
        " *   (indented)\n"
        " */\n"
        "struct A {\n"
        "  /** The x. */\n"
        "  1: i32 x\n"
        "  /**/\n"
        "  2: i32 y\n"
        "}\n"
    )
    (record,) = document.definitions
    assert isinstance(record, s.Record)
    assert record.doc == "Ported from Thrift.\n  (indented)"
    assert [f.doc for f in record.fields] == ["The x.", ""]
