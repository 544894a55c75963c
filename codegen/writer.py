"""A small code writer: indented lines, and expressions laid out to fit the line length.

Expressions are built as trees (:class:`Atom`, :class:`Seq`, :class:`Pair`) and printed flat
when they fit, otherwise one element per line, the way a person (or black) would break them.
This is what keeps generated code within ruff's line length whatever the IDL names are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import textwrap
from collections.abc import Iterator, Sequence
from typing import TypeAlias

#: The project's line length (pyproject.toml [tool.ruff]).
LINE_LENGTH = 100
INDENT = "    "


@dataclasses.dataclass(frozen=True)
class Atom:
    """Text that is never broken."""

    text: str


@dataclasses.dataclass(frozen=True)
class Seq:
    """A bracketed, comma-separated sequence: a call, list, tuple, dict or parameter list.

    ``callee`` (an expression printed before ``open``) makes it a call or subscript whose
    callee may itself be broken; ``tuple_comma`` adds the comma a one-element tuple needs;
    subscripts set ``last_comma=False`` (``X[a,]`` would mean ``X[(a,)]``).
    """

    open: str
    items: tuple[Expr, ...]
    close: str
    tuple_comma: bool = False
    callee: Expr | None = None
    last_comma: bool = True


@dataclasses.dataclass(frozen=True)
class Str:
    """A string literal; when too long it becomes parenthesised implicit concatenation."""

    text: str


@dataclasses.dataclass(frozen=True)
class Pair:
    """``left`` + ``sep`` + ``right``: a keyword argument (``name=``) or dict entry (``: ``)."""

    left: str
    sep: str
    right: Expr


Expr: TypeAlias = Atom | Seq | Pair | Str


def call(func: str | Expr, *args: Expr, **kwargs: Expr) -> Seq:
    """``func(args..., name=value...)``; ``func`` may be an expression (a subscript)."""
    items = tuple(args) + tuple(Pair(k, "=", v) for k, v in kwargs.items())
    if isinstance(func, str):
        return Seq(f"{func}(", items, ")")
    return Seq("(", items, ")", callee=func)


def subscript(name: str, *params: Expr) -> Seq:
    """``name[params]``, breakable without changing its meaning."""
    return Seq(f"{name}[", params, "]", last_comma=False)


def flat(expr: Expr) -> str:
    """The expression on one line."""
    if isinstance(expr, Atom):
        return expr.text
    if isinstance(expr, Str):
        return string_literal(expr.text)
    if isinstance(expr, Pair):
        return f"{expr.left}{expr.sep}{flat(expr.right)}"
    inner = ", ".join(flat(item) for item in expr.items)
    if expr.tuple_comma and len(expr.items) == 1:
        inner += ","
    callee = flat(expr.callee) if expr.callee is not None else ""
    return f"{callee}{expr.open}{inner}{expr.close}"


def layout(expr: Expr, indent: str, head: str = "", tail: str = "") -> list[str]:
    """Lines for ``head + expr + tail`` at ``indent``, broken only where needed."""
    one_line = f"{indent}{head}{flat(expr)}{tail}"
    if len(one_line) <= LINE_LENGTH or isinstance(expr, Atom):
        return [one_line]
    if isinstance(expr, Str):
        return _layout_string(expr.text, indent, head, tail)
    if isinstance(expr, Pair):
        return layout(expr.right, indent, f"{head}{expr.left}{expr.sep}", tail)
    lines = _layout_open(expr, indent, head)
    comma = "," if expr.last_comma else ""
    for index, item in enumerate(expr.items):
        last = index == len(expr.items) - 1
        lines.extend(layout(item, indent + INDENT, "", comma if last else ","))
    lines.append(f"{indent}{expr.close}{tail}")
    return lines


def _layout_open(expr: Seq, indent: str, head: str) -> list[str]:
    """The line(s) up to and including the opening bracket."""
    if expr.callee is None:
        return [f"{indent}{head}{expr.open}"]
    opening = f"{indent}{head}{flat(expr.callee)}{expr.open}"
    if len(opening) <= LINE_LENGTH:
        return [opening]
    return layout(expr.callee, indent, head, expr.open)


def _layout_string(text: str, indent: str, head: str, tail: str) -> list[str]:
    width = LINE_LENGTH - len(indent) - len(INDENT) - 2
    chunks: list[str] = []
    while text:
        cut = len(text)
        while len(string_literal(text[:cut])) > width and cut > 1:
            space = text.rfind(" ", 0, cut - 1)
            cut = space + 1 if space > 0 else cut - 1
        chunks.append(text[:cut])
        text = text[cut:]
    lines = [f"{indent}{head}("]
    lines.extend(f"{indent}{INDENT}{string_literal(chunk)}" for chunk in chunks)
    lines.append(f"{indent}){tail}")
    return lines


class CodeWriter:
    """Accumulates lines of Python with the current indentation."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._indent = ""

    def line(self, text: str = "") -> None:
        """Add one line (blank lines carry no indentation)."""
        self._lines.append(f"{self._indent}{text}" if text else "")

    def lines(self, texts: Sequence[str]) -> None:
        """Add several lines at the current indentation."""
        for text in texts:
            self.line(text)

    def expr(self, expr: Expr, head: str = "", tail: str = "") -> None:
        """Add ``head + expr + tail``, broken over lines if too long."""
        self._lines.extend(layout(expr, self._indent, head, tail))

    def blank(self, count: int = 1) -> None:
        """End the output with exactly ``count`` blank lines (none at the very start)."""
        while self._lines and self._lines[-1] == "":
            self._lines.pop()
        if self._lines:
            self._lines.extend([""] * count)

    def docstring(self, text: str) -> None:
        """Add a docstring, escaped and wrapped to the line length."""
        width = LINE_LENGTH - len(self._indent) - 6  # room for the quotes
        lines = [escape_text(line) for line in _wrap(text, width)] or [""]
        if len(lines) == 1:
            self.line(f'"""{lines[0]}"""')
            return
        self.line(f'"""{lines[0]}')
        for line in lines[1:]:
            self.line(line)
        self.line('"""')

    @contextlib.contextmanager
    def indented(self) -> Iterator[None]:
        """Indent the lines written inside the ``with`` block."""
        saved = self._indent
        self._indent += INDENT
        try:
            yield
        finally:
            self._indent = saved

    def text(self) -> str:
        """The source so far, ending with exactly one newline."""
        while self._lines and self._lines[-1] == "":
            self._lines.pop()
        return "\n".join(self._lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for line in text.strip().splitlines():
        wrapped = textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
        out.extend(wrapped or [""])
    return out


def escape_text(text: str) -> str:
    """Escape text for the inside of a triple-quoted string; non-ASCII becomes escapes.

    Escaping non-ASCII keeps ruff's confusable-character rules (RUF001-RUF003) quiet.
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if " " <= c <= "~" else _escape_char(c) for c in text)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def string_literal(text: str) -> str:
    """A double-quoted Python string literal for ``text``, ASCII only."""
    return f'"{escape_text(text)}"'
