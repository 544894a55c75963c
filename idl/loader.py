"""Read and parse `.idl` files and everything they include.

Includes are paths relative to the including file. Each file is parsed once however often it
is included; an include cycle is reported at the `include` that closes it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from idl import syntax as s
from idl.diagnostics import Diagnostic
from idl.parser import parse

#: Reads a file's text; raises OSError or UnicodeDecodeError.
Reader = Callable[[str], str]


def read_utf8(path: str) -> str:
    """Read a source file as UTF-8."""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def module_name(path: str) -> str:
    """The module name of a file: its stem (`geo/point.idl` -> `point`)."""
    return os.path.splitext(os.path.basename(path))[0]


@dataclasses.dataclass
class SourceFile:
    """One parsed file. ``includes`` maps each include's path text to the included file's key."""

    path: str
    key: str
    text: str
    document: s.Document
    includes: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class LoadResult:
    """Every file reached from the roots, included files before their includers."""

    files: dict[str, SourceFile]
    roots: list[str]
    diagnostics: list[Diagnostic]
    sources: dict[str, str]


class _Loader:
    def __init__(self, read: Reader) -> None:
        self.read = read
        self.result = LoadResult({}, [], [], {})
        self.failed: set[str] = set()
        self.stack: list[str] = []

    def load(self, path: str, key: str, origin: tuple[str, s.Pos] | None) -> bool:
        """Load ``path`` and its includes (depth first); False if it could not be parsed."""
        if key in self.result.files:
            return True
        if key in self.failed:
            return False
        text = self._read(path, origin)
        if text is None:
            self.failed.add(key)
            return False
        self.result.sources[path] = text
        parsed = parse(text, path)
        self.result.diagnostics.extend(parsed.diagnostics)
        if parsed.document is None:
            self.failed.add(key)
            return False
        source = SourceFile(path, key, text, parsed.document)
        self.stack.append(key)
        for include in parsed.document.includes:
            self._include(source, include)
        self.stack.pop()
        self.result.files[key] = source
        return True

    def _include(self, source: SourceFile, include: s.Include) -> None:
        target = os.path.normpath(os.path.join(os.path.dirname(source.path), include.path))
        key = os.path.realpath(target)
        if key in self.stack:
            cycle = [self._path_of(k) for k in self.stack[self.stack.index(key) :]] + [target]
            self._error(source.path, include.pos, "include cycle: " + " -> ".join(cycle))
            return
        if self.load(target, key, (source.path, include.pos)):
            source.includes[include.path] = key

    def _path_of(self, key: str) -> str:
        if key in self.result.files:
            return self.result.files[key].path
        return next((p for p in self.result.sources if os.path.realpath(p) == key), key)

    def _read(self, path: str, origin: tuple[str, s.Pos] | None) -> str | None:
        try:
            return self.read(path)
        except UnicodeDecodeError as exc:
            problem = f"'{path}' is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        except OSError as exc:
            problem = f"cannot read '{path}': {exc.strerror or exc}"
        if origin is None:
            self.result.diagnostics.append(Diagnostic(path, 1, 1, problem))
        else:
            self._error(origin[0], origin[1], problem)
        return None

    def _error(self, path: str, pos: s.Pos, message: str) -> None:
        self.result.diagnostics.append(Diagnostic.at(path, pos, message))


def load(paths: Sequence[str], read: Reader = read_utf8) -> LoadResult:
    """Read and parse the given files and all their includes."""
    loader = _Loader(read)
    for path in paths:
        path = os.path.normpath(path)
        key = os.path.realpath(path)
        if loader.load(path, key, None) and key not in loader.result.roots:
            loader.result.roots.append(key)
    return loader.result
