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

    ``tuple_comma`` adds the comma a one-element tuple needs.
    """

    open: str
    items: tuple[Expr, ...]
    close: str
    tuple_comma: bool = False


@dataclasses.dataclass(frozen=True)
class Pair:
    """``left`` + ``sep`` + ``right``: a keyword argument (``name=``) or dict entry (``: ``)."""

    left: str
    sep: str
    right: Expr


Expr: TypeAlias = Atom | Seq | Pair


def call(func: str, *args: Expr, **kwargs: Expr) -> Seq:
    """``func(args..., name=value...)``."""
    items = list(args) + [Pair(k, "=", v) for k, v in kwargs.items()]
    return Seq(f"{func}(", tuple(items), ")")


def flat(expr: Expr) -> str:
    """The expression on one line."""
    if isinstance(expr, Atom):
        return expr.text
    if isinstance(expr, Pair):
        return f"{expr.left}{expr.sep}{flat(expr.right)}"
    inner = ", ".join(flat(item) for item in expr.items)
    if expr.tuple_comma and len(expr.items) == 1:
        inner += ","
    return f"{expr.open}{inner}{expr.close}"


def layout(expr: Expr, indent: str, head: str = "", tail: str = "") -> list[str]:
    """Lines for ``head + expr + tail`` at ``indent``, broken only where needed."""
    one_line = f"{indent}{head}{flat(expr)}{tail}"
    if len(one_line) <= LINE_LENGTH or isinstance(expr, Atom):
        return [one_line]
    if isinstance(expr, Pair):
        return layout(expr.right, indent, f"{head}{expr.left}{expr.sep}", tail)
    lines = [f"{indent}{head}{expr.open}"]
    for item in expr.items:
        lines.extend(layout(item, indent + INDENT, "", ","))
    lines.append(f"{indent}{expr.close}{tail}")
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
    return "".join(c if " " <= c <= "~" or c == "\t" else _escape_char(c) for c in text)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r"}


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
