"""Diagnostics: ``path:line:col: error: message``, then the source line and a caret."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from idl.syntax import Pos


@dataclasses.dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in an IDL file. Lines and columns are 1-based."""

    path: str
    line: int
    column: int
    message: str

    @classmethod
    def at(cls, path: str, pos: Pos, message: str) -> Diagnostic:
        """A diagnostic at a syntax-tree position."""
        return cls(path, pos.line, pos.column, message)

    def header(self) -> str:
        """The first line: ``path:line:col: error: message``."""
        return f"{self.path}:{self.line}:{self.column}: error: {self.message}"

    def render(self, source: str | None) -> str:
        """The header, followed by the source line and a caret when the source is known."""
        lines = source.splitlines() if source is not None else []
        if not 1 <= self.line <= len(lines):
            return self.header()
        text = lines[self.line - 1]
        # Copy tabs into the caret line so the caret sits under the right character.
        lead = "".join(c if c == "\t" else " " for c in text[: max(self.column - 1, 0)])
        return f"{self.header()}\n{text}\n{lead}^"


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """Render diagnostics in file and position order, one block each."""
    return "\n".join(d.render(sources.get(d.path)) for d in sorted(set(diagnostics)))


class DiagnosticSink:
    """Collects the diagnostics of one file as the checker walks it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[Diagnostic] = []

    def error(self, pos: Pos, message: str) -> None:
        """Record an error at ``pos``."""
        self.items.append(Diagnostic.at(self.path, pos, message))
