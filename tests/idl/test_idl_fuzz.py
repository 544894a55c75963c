"""Fuzzing the front end: whatever the input, the parser and checker only return diagnostics.

And whatever the checker accepts, the generator turns into Python that compiles.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen.generate import generate
from codegen.regen_golden import golden_inputs
from idl.checker import CheckResult, check_files

GOLDEN_TEXTS = {}
for _path in golden_inputs():
    with open(_path, encoding="utf-8") as _handle:
        GOLDEN_TEXTS[_path.rsplit("/", 1)[-1]] = _handle.read()

TOKENS = [
    "struct", "union", "exception", "enum", "service", "version", "const", "typedef",
    "include", "optional", "required", "oneway", "idempotent", "throws", "void", "list", "set",
    "map", "i32", "u8", "f32", "string", "bytes", "bool", "true", "false", "A", "B", "x", "y",
    "shapes.Point", "{", "}", "(", ")", "<", ">", "[", "]", ",", ";", ":", "=", "-", "1", "2",
    "0x7f", "1.5e3", '"s"', "'t'", "///doc\n", "// c\n", "/* c */", "\n", ".", "300",
    '"shapes.idl"',
]  # fmt: skip


def check_text(text: str, name: str = "fuzz.idl") -> CheckResult:
    """Check ``text`` as a file that may include the golden files (served from memory)."""

    def read(path: str) -> str:
        if path == name:
            return text
        if path in GOLDEN_TEXTS:
            return GOLDEN_TEXTS[path]
        raise FileNotFoundError(2, "No such file or directory")

    return check_files([name], read=read)


def assert_only_diagnostics(text: str) -> None:
    checked = check_text(text)
    for diagnostic in checked.diagnostics:
        assert diagnostic.line >= 1
        assert diagnostic.column >= 1
        assert diagnostic.message
    generated = generate(checked)
    for module, source in generated.sources.items():
        compile(source, f"{module}.py", "exec")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    assert_only_diagnostics(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup(tokens: list[str]) -> None:
    assert_only_diagnostics(" ".join(tokens))


@st.composite
def mutated_golden(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(sorted(GOLDEN_TEXTS.values())))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 20)))
        insert = draw(st.sampled_from(["", *TOKENS]))
        text = text[:start] + insert + text[end:]
    return text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_golden())
def test_mutated_valid_idl(text: str) -> None:
    assert_only_diagnostics(text)


def test_unmutated_golden_files_check_cleanly() -> None:
    # The mutation test is only meaningful if its starting points are valid.
    for text in GOLDEN_TEXTS.values():
        checked = check_text(text)
        assert checked.diagnostics == []
