"""Type-checking constant values (`const` definitions and field defaults) against their types."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from idl import model as m
from idl import syntax as s
from idl.diagnostics import DiagnosticSink

#: Ranges of the integer base types.
INT_RANGES: dict[str, tuple[int, int]] = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
#: Largest finite IEEE 754 binary32 value.
F32_MAX = 3.4028234663852886e38



@dataclasses.dataclass(frozen=True)
class ConstRef:
    """A reference to a constant: its type and source value, and how to resolve names in it.

    A reference is checked like the literal it names, against the type it is used as.
    """

    const: m.Const
    value: s.Value
    resolver: NameResolver


#: Resolves a name used as a value: a constant, an enum member, or an error message.
NameResolver = Callable[[s.NameValue], "ConstRef | m.EnumMember | str"]


def type_name(t: m.Type) -> str:
    """How a type is spelled in IDL, for messages."""
    if isinstance(t, m.BaseType):
        return t.name if t.bound is None else f"{t.name}<{t.bound}>"
    if isinstance(t, (m.ListType, m.SetType)):
        kind = "list" if isinstance(t, m.ListType) else "set"
        bound = "" if t.bound is None else f", {t.bound}"
        return f"{kind}<{type_name(t.elem)}{bound}>"
    if isinstance(t, m.MapType):
        bound = "" if t.bound is None else f", {t.bound}"
        return f"map<{type_name(t.key)}, {type_name(t.value)}{bound}>"
    return t.name


def _found(value: s.Value) -> str:
    found = {
        s.IntValue: "an integer",
        s.FloatValue: "a float",
        s.StringValue: "a string",
        s.ListValue: "a list",
        s.MapValue: "a map",
    }
    if isinstance(value, s.BoolValue):
        return "true" if value.value else "false"
    if isinstance(value, s.NameValue):
        return f"'{value.name}'"
    return found[type(value)]


class ValueChecker:
    """Checks values against types, reporting every mismatch into a sink."""

    def __init__(self, sink: DiagnosticSink, resolve_name: NameResolver) -> None:
        self.sink = sink
        self.resolve_name = resolve_name
        self._active: list[m.Const] = []  # constants being expanded, to catch cycles
        self._cycle: str | None = None
        self._root: m.Const | None = None  # the constant whose definition is being checked

    def check_const(self, const: m.Const, value: s.Value) -> m.ConstValue | None:
        """Check a constant's own definition (references back to it are cycles)."""
        self._root = const
        try:
            return self.check(const.type, value)
        finally:
            self._root = None

    def _error(self, pos: s.Pos, message: str) -> None:
        # While expanding a referenced constant, problems are reported once, at the reference.
        if not self._active:
            self.sink.error(pos, message)

    def check(self, expected: m.Type, value: s.Value) -> m.ConstValue | None:
        """The checked value, or ``None`` after reporting why it does not fit."""
        target = m.resolve_alias(expected)
        if isinstance(target, m.BaseType) and target.name == "?":
            return None  # the type itself was wrong; that is already reported
        if isinstance(value, s.NameValue) and not isinstance(target, m.Enum):
            return self._named(expected, value)
        if isinstance(target, m.BaseType):
            return self._base(target, value)
        if isinstance(target, m.Enum):
            return self._enum(target, expected, value)
        if isinstance(target, (m.ListType, m.SetType)):
            return self._list(target, value)
        if isinstance(target, m.MapType):
            return self._map(target, value)
        self._error(value.pos, f"constant values of {target.kind} type '{target.name}' are "
                               "not supported; only base types, enums and containers")
        return None

    def _mismatch(self, expected: m.Type, value: s.Value) -> None:
        self._error(value.pos, f"expected a value of type {type_name(expected)}, "
                               f"found {_found(value)}")

    def _named(self, expected: m.Type, value: s.NameValue) -> m.ConstValue | None:
        resolved = self.resolve_name(value)
        if isinstance(resolved, str):
            self._error(value.pos, resolved)
            return None
        if isinstance(resolved, m.EnumMember):
            self._mismatch(expected, value)
            return None
        if resolved.const in self._active or resolved.const is self._root:
            if not self._active:
                self._error(value.pos, f"constant '{value.name}' refers to itself")
            self._cycle = resolved.const.name
            return None
        outer_resolver = self.resolve_name
        self._active.append(resolved.const)
        self.resolve_name = resolved.resolver
        try:
            result = self.check(expected, resolved.value)
        finally:
            self._active.pop()
            self.resolve_name = outer_resolver
        if result is None and not self._active:
            if self._cycle is not None:
                self._error(value.pos, f"constant '{self._cycle}' refers to itself "
                                       f"(through '{value.name}')")
                self._cycle = None
            else:
                self._error(value.pos, f"constant '{value.name}' is not a valid "
                                       f"{type_name(expected)}")
        return result

    def _base(self, t: m.BaseType, value: s.Value) -> m.ConstValue | None:
        if t.name == "bool" and isinstance(value, s.BoolValue):
            return value.value
        if t.name in INT_RANGES and isinstance(value, s.IntValue):
            low, high = INT_RANGES[t.name]
            if not low <= value.value <= high:
                self._error(value.pos, f"{value.value} is out of range for {t.name} "
                                           f"({low}..{high})")
                return None
            return value.value
        if t.name in ("f32", "f64") and isinstance(value, (s.IntValue, s.FloatValue)):
            result = float(value.value)
            if t.name == "f32" and abs(result) > F32_MAX and not math.isinf(result):
                self._error(value.pos, f"{value.value} is out of range for f32")
                return None
            return result
        if t.name in ("string", "bytes") and isinstance(value, s.StringValue):
            text: str | bytes = value.value if t.name == "string" else value.value.encode()
            if t.bound is not None and len(text) > t.bound:
                self._error(value.pos, f"value of length {len(text)} exceeds "
                                           f"{type_name(t)}")
                return None
            return text
        self._mismatch(t, value)
        return None

    def _enum(self, t: m.Enum, expected: m.Type, value: s.Value) -> m.ConstValue | None:
        if isinstance(value, s.IntValue):
            member = next((v for v in t.values if v.value == value.value), None)
            if member is None:
                self._error(value.pos, f"{value.value} is not a value of enum '{t.name}'")
                return None
            return m.EnumMember(t, member)
        if not isinstance(value, s.NameValue):
            self._mismatch(expected, value)
            return None
        resolved = self.resolve_name(value)
        if isinstance(resolved, m.EnumMember):
            if resolved.enum is not t:
                self._mismatch(expected, value)
                return None
            return resolved
        if isinstance(resolved, str):
            self._error(value.pos, resolved)
            return None
        return self._named(expected, value)

    def _list(self, t: m.ListType | m.SetType, value: s.Value) -> m.ConstValue | None:
        if not isinstance(value, s.ListValue):
            self._mismatch(t, value)
            return None
        if t.bound is not None and len(value.items) > t.bound:
            self._error(value.pos, f"{len(value.items)} elements exceed {type_name(t)}")
            return None
        items = [self.check(t.elem, item) for item in value.items]
        if any(item is None for item in items):
            return None
        if isinstance(t, m.SetType):
            self._no_duplicates(items, list(value.items), "set element")
        return m.ListValue(tuple(i for i in items if i is not None), isinstance(t, m.SetType))

    def _map(self, t: m.MapType, value: s.Value) -> m.ConstValue | None:
        if not isinstance(value, s.MapValue):
            self._mismatch(t, value)
            return None
        if t.bound is not None and len(value.pairs) > t.bound:
            self._error(value.pos, f"{len(value.pairs)} entries exceed {type_name(t)}")
            return None
        pairs = [(self.check(t.key, k), self.check(t.value, v)) for k, v in value.pairs]
        checked = tuple((k, v) for k, v in pairs if k is not None and v is not None)
        self._no_duplicates([k for k, _ in pairs], [k for k, _ in value.pairs], "map key")
        return m.MapValue(checked) if len(checked) == len(pairs) else None

    def _no_duplicates(
        self, checked: list[m.ConstValue | None], written: list[s.Value], what: str
    ) -> None:
        # Generated literals must not repeat elements (Python would drop them silently).
        seen: set[tuple[type, m.ConstValue]] = set()
        for item, source in zip(checked, written):
            if item is None:
                continue
            key = (type(item), item)
            if key in seen:
                self._error(source.pos, f"duplicate {what}")
            seen.add(key)
