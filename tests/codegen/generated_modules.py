"""Helpers for tests that import generated code: load modules without leaking them.

Generated modules have plain names (``calculator``, ``shapes``) that other tests may also
generate, so they are imported with their directory briefly on ``sys.path`` and removed from
``sys.modules`` afterwards (the returned module objects stay usable).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from types import ModuleType

from hypothesis import strategies as st

from codegen.generate import generate
from idl.checker import check_files
from idl.diagnostics import render_all
from rpc.calls import schema


def load_modules(directory: str, names: list[str]) -> dict[str, ModuleType]:
    """Import ``names`` from ``directory`` without leaving them in ``sys.modules``."""
    saved_path = list(sys.path)
    saved = {name: sys.modules.pop(name, None) for name in names}
    sys.path.insert(0, directory)
    try:
        return {name: importlib.import_module(name) for name in names}
    finally:
        sys.path[:] = saved_path
        for name, module in saved.items():
            sys.modules.pop(name, None)
            if module is not None:
                sys.modules[name] = module


def build_idl(files: Mapping[str, str]) -> dict[str, ModuleType]:
    """Generate and import modules from in-memory IDL files (``name.idl`` -> text)."""
    with tempfile.TemporaryDirectory() as directory:
        for name, text in files.items():
            with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        checked = check_files([os.path.join(directory, name) for name in files])
        generated = generate(checked)
        assert not generated.diagnostics, render_all(generated.diagnostics, checked.sources)
        for module, source in generated.sources.items():
            with open(os.path.join(directory, f"{module}.py"), "w", encoding="utf-8") as out:
                out.write(source)
        return load_modules(directory, list(generated.sources))


def record_descriptors(module: ModuleType) -> Iterator[tuple[str, schema.TypeDesc]]:
    """The ``_T_*`` descriptors a generated module defines, by name."""
    for name, value in sorted(vars(module).items()):
        if name.startswith("_T_") and isinstance(value, schema.TypeDesc):
            yield name, value


class ValueStrategies:
    """Hypothesis strategies of valid values for descriptors.

    Nesting is limited by ``depth``: at depth 0 containers are empty and optional fields are
    ``None``, so recursive records stay small (the checker guarantees they are constructible).
    """

    def __init__(self, max_items: int = 3, depth: int = 3) -> None:
        self.max_items = max_items
        self.depth = depth
        self._cache: dict[tuple[int, int], st.SearchStrategy[object]] = {}

    def _size(self, bound: int | None, depth: int) -> int:
        if depth == 0:
            return 0
        return self.max_items if bound is None else min(bound, self.max_items)

    def of(self, desc: schema.TypeDesc, depth: int | None = None) -> st.SearchStrategy[object]:
        """Values ``desc`` accepts and round-trips exactly."""
        depth = self.depth if depth is None else depth
        key = (id(desc), depth)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(desc, depth))
        return self._cache[key]

    def _build(self, desc: schema.TypeDesc, depth: int) -> st.SearchStrategy[object]:
        inner = max(depth - 1, 0)
        if desc is schema.BOOL:
            return st.booleans()
        if desc is schema.F32:
            return st.floats(width=32, allow_nan=False)
        if desc is schema.F64:
            return st.floats(allow_nan=False)
        if isinstance(desc, (schema.String, schema.Bytes)):
            size = desc.max_len if desc.max_len is not None else 3 * self.max_items
            return st.text(max_size=size) if isinstance(desc, schema.String) \
                else st.binary(max_size=size)
        if isinstance(desc, schema.ListOf):
            return st.lists(self.of(desc.elem, inner), max_size=self._size(desc.max_len, depth))
        if isinstance(desc, schema.SetOf):
            return st.frozensets(self.of(desc.elem, inner),
                                 max_size=self._size(desc.max_len, depth))
        if isinstance(desc, schema.MapOf):
            return st.dictionaries(self.of(desc.key, inner), self.of(desc.value, inner),
                                   max_size=self._size(desc.max_len, depth))
        if isinstance(desc, schema.EnumOf):
            return st.sampled_from(list(desc.enum_cls))
        if isinstance(desc, schema.UnionOf):
            members = desc.fields if depth else desc.fields[:1]
            return st.one_of([st.builds(desc.cls, **{f.attr: self.of(f.type, inner)})
                              for f in members])
        if isinstance(desc, schema.StructOf):
            fields = {f.attr: self._field(f, inner, depth) for f in desc.fields}
            return st.builds(desc.cls, **fields)
        low, high = desc.low, desc.high  # type: ignore[attr-defined]  # an integer descriptor
        return st.integers(low, high)

    def _field(self, field: schema.Field, inner: int, depth: int) -> st.SearchStrategy[object]:
        if not field.optional:
            return self.of(field.type, inner)
        return st.none() if depth == 0 else st.none() | self.of(field.type, inner)
