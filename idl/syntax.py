"""The syntax tree of one `.idl` file, as written (names unresolved, values unchecked).

Every node carries the position the checker points its caret at: for definitions and fields
that is the name, for numbers the number, for types and values their first character.
"""

from __future__ import annotations

import dataclasses
from typing import TypeAlias


@dataclasses.dataclass(frozen=True)
class Pos:
    """A 1-based line and column in a source file."""

    line: int
    column: int


# --------------------------------------------------------------------------- types


@dataclasses.dataclass(frozen=True)
class NamedType:
    """A base type, or a (possibly include-qualified) user type: `i32`, `Point`, `geo.Point`."""

    pos: Pos
    name: str
    bound: int | None = None


@dataclasses.dataclass(frozen=True)
class ListType:
    """`list<T>` or `list<T, N>`."""

    pos: Pos
    elem: TypeRef
    bound: int | None = None


@dataclasses.dataclass(frozen=True)
class SetType:
    """`set<T>` or `set<T, N>`."""

    pos: Pos
    elem: TypeRef
    bound: int | None = None


@dataclasses.dataclass(frozen=True)
class MapType:
    """`map<K, V>` or `map<K, V, N>`."""

    pos: Pos
    key: TypeRef
    value: TypeRef
    bound: int | None = None


TypeRef: TypeAlias = NamedType | ListType | SetType | MapType


# --------------------------------------------------------------------------- values


@dataclasses.dataclass(frozen=True)
class IntValue:
    """An integer literal (decimal or hex, possibly negative)."""

    pos: Pos
    value: int


@dataclasses.dataclass(frozen=True)
class FloatValue:
    """A floating-point literal."""

    pos: Pos
    value: float


@dataclasses.dataclass(frozen=True)
class StringValue:
    """A string literal, escapes already processed."""

    pos: Pos
    value: str


@dataclasses.dataclass(frozen=True)
class BoolValue:
    """`true` or `false`."""

    pos: Pos
    value: bool


@dataclasses.dataclass(frozen=True)
class NameValue:
    """A reference to a constant or an enum value: `MAX`, `Color.RED`, `geo.Color.RED`."""

    pos: Pos
    name: str


@dataclasses.dataclass(frozen=True)
class ListValue:
    """`[a, b, c]`: a list or set literal."""

    pos: Pos
    items: tuple[Value, ...]


@dataclasses.dataclass(frozen=True)
class MapValue:
    """`{k: v, ...}`: a map literal."""

    pos: Pos
    pairs: tuple[tuple[Value, Value], ...]


Value: TypeAlias = (
    IntValue | FloatValue | StringValue | BoolValue | NameValue | ListValue | MapValue
)


# --------------------------------------------------------------------------- definitions


@dataclasses.dataclass(frozen=True)
class Include:
    """`include "other.idl";`."""

    pos: Pos
    path: str


@dataclasses.dataclass(frozen=True)
class Const:
    """`const T NAME = value;`."""

    pos: Pos
    name: str
    type: TypeRef
    value: Value
    doc: str


@dataclasses.dataclass(frozen=True)
class Typedef:
    """`typedef T NAME;`."""

    pos: Pos
    name: str
    type: TypeRef
    doc: str


@dataclasses.dataclass(frozen=True)
class EnumItem:
    """One value of an enum, with its explicit value if written."""

    pos: Pos
    name: str
    value: IntValue | None
    doc: str


@dataclasses.dataclass(frozen=True)
class Enum:
    """`enum NAME { ... }`."""

    pos: Pos
    name: str
    items: tuple[EnumItem, ...]
    doc: str


@dataclasses.dataclass(frozen=True)
class Field:
    """A numbered field of a record, or a numbered parameter of a method."""

    pos: Pos
    number: int
    number_pos: Pos
    requiredness: str | None  # "optional", "required" or None
    type: TypeRef
    name: str
    default: Value | None
    doc: str


@dataclasses.dataclass(frozen=True)
class Record:
    """`struct`, `union` or `exception` (``kind``)."""

    pos: Pos
    kind: str
    name: str
    fields: tuple[Field, ...]
    doc: str


@dataclasses.dataclass(frozen=True)
class Throw:
    """One entry of a `throws (...)` clause: `1: DivByZero e` or just `DivByZero`."""

    pos: Pos
    number: int | None
    type: TypeRef
    name: str | None


@dataclasses.dataclass(frozen=True)
class Method:
    """A method of a service; ``result`` is ``None`` for `void`."""

    pos: Pos
    number: int | None
    number_pos: Pos | None
    oneway: bool
    idempotent: bool
    result: TypeRef | None
    name: str
    params: tuple[Field, ...]
    throws: tuple[Throw, ...]
    doc: str


@dataclasses.dataclass(frozen=True)
class Service:
    """`service NAME version N { ... }`; the version defaults to 1."""

    pos: Pos
    name: str
    version: int
    version_pos: Pos
    methods: tuple[Method, ...]
    doc: str


Definition: TypeAlias = Const | Typedef | Enum | Record | Service


@dataclasses.dataclass(frozen=True)
class Document:
    """One parsed file."""

    path: str
    includes: tuple[Include, ...]
    definitions: tuple[Definition, ...]
