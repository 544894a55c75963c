"""Program-wide checks on records: hashability where needed, and constructibility."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from idl import model as m
from idl import syntax as s
from idl.diagnostics import Diagnostic
from idl.values import type_name


def unhashable_reason(t: m.Type, seen: set[int] | None = None) -> str | None:
    """Why values of ``t`` cannot be map keys or set elements, or ``None`` if they can."""
    seen = set() if seen is None else seen
    t = m.resolve_alias(t)
    if isinstance(t, (m.BaseType, m.Enum)):
        return None
    if isinstance(t, m.SetType):
        return unhashable_reason(t.elem, seen)
    if isinstance(t, (m.ListType, m.MapType)):
        return f"{type_name(t)} is not hashable"
    if t.kind == "exception":
        return f"exception '{t.name}' is not hashable"
    if id(t) in seen:
        return None
    seen.add(id(t))
    for field in t.fields:
        reason = unhashable_reason(field.type, seen)
        if reason is not None:
            return f"field '{field.name}' of '{t.name}': {reason}"
    return None


def _mark_hashable(t: m.Type) -> None:
    """Mark every record reachable from ``t`` as needing hashable values."""
    t = m.resolve_alias(t)
    if isinstance(t, m.SetType):
        _mark_hashable(t.elem)
    elif isinstance(t, m.Record) and not t.hashable:
        t.hashable = True
        for field in t.fields:
            _mark_hashable(field.type)


def check_hashable(uses: Iterable[tuple[str, m.Type, s.Pos, str]]) -> list[Diagnostic]:
    """Check every type used as a map key or set element (``(path, type, pos, role)``)."""
    diagnostics = []
    for path, t, pos, role in uses:
        if isinstance(t, m.BaseType) and t.name == "?":
            continue
        resolved = m.resolve_alias(t)
        if isinstance(resolved, m.SetType) and unhashable_reason(resolved.elem) is not None:
            continue  # the inner set<...> is reported where it is written
        reason = unhashable_reason(t)
        if reason is None:
            _mark_hashable(t)
            continue
        described = type_name(t)
        detail = "" if reason == f"{described} is not hashable" else f" ({reason})"
        diagnostics.append(Diagnostic.at(path, pos, f"{role} must be hashable; "
                                                    f"{described} is not{detail}"))
    return diagnostics


def _constructible(t: m.Type, done: set[int]) -> bool:
    t = m.resolve_alias(t)
    return not isinstance(t, m.Record) or id(t) in done


def check_constructible(modules: Sequence[m.Module]) -> list[Diagnostic]:
    """Report records whose required fields form a cycle no finite value can satisfy."""
    records = [d for module in modules for d in module.definitions if isinstance(d, m.Record)]
    done: set[int] = set()
    changed = True
    while changed:  # least fixed point: a record is buildable once its needs are
        changed = False
        for record in records:
            if id(record) in done:
                continue
            if record.kind == "union":
                ok = not record.fields or any(_constructible(f.type, done) for f in record.fields)
            else:
                ok = all(_constructible(f.type, done) for f in record.fields
                         if not f.optional and f.default is None)
            if ok:
                done.add(id(record))
                changed = True
    paths = {id(d): module.path for module in modules for d in module.definitions}
    return [
        Diagnostic.at(paths[id(r)], r.pos, f"{r.kind} '{r.name}' can never be "
                   "constructed: its required fields always need another value of the same "
                   "type (make one of them optional)")
        for r in records if id(r) not in done
    ]
