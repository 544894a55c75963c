"""The checked schema model: names resolved, numbers assigned, values type-checked.

This is what the checker produces and code generators consume. It knows nothing of Python:
names are the IDL's own, values are plain data. User-defined types are referenced by object, so
recursive types are cycles in this graph.
"""

from __future__ import annotations

import dataclasses
from typing import TypeAlias

from idl.syntax import Pos

#: Position of model objects that were not read from a file.
NO_POS = Pos(0, 0)


@dataclasses.dataclass(frozen=True)
class BaseType:
    """A built-in type under its canonical name (`double` is `f64`), with its length bound."""

    name: str  # bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 string bytes
    bound: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class ListType:
    """`list<T, bound>`."""

    elem: Type
    bound: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class SetType:
    """`set<T, bound>`."""

    elem: Type
    bound: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class MapType:
    """`map<K, V, bound>`."""

    key: Type
    value: Type
    bound: int | None = None


@dataclasses.dataclass(eq=False)
class EnumValue:
    """One named value of an enum."""

    name: str
    value: int
    doc: str = ""
    pos: Pos = NO_POS


@dataclasses.dataclass(eq=False)
class Enum:
    """An enum; ``module`` is the stem of the file that defines it."""

    name: str
    module: str
    values: list[EnumValue] = dataclasses.field(default_factory=list)
    doc: str = ""
    pos: Pos = NO_POS


@dataclasses.dataclass(eq=False)
class Field:
    """A numbered field of a record or parameter of a method."""

    number: int
    name: str
    type: Type
    optional: bool = False
    default: ConstValue | None = None
    doc: str = ""
    pos: Pos = NO_POS


@dataclasses.dataclass(eq=False)
class Record:
    """A struct, union or exception.

    ``hashable`` is set when the record is used (directly or inside another record) as a map
    key or set element: generators must then make its values hashable.
    """

    kind: str  # "struct", "union", "exception"
    name: str
    module: str
    fields: list[Field] = dataclasses.field(default_factory=list)
    doc: str = ""
    hashable: bool = False
    pos: Pos = NO_POS


@dataclasses.dataclass(eq=False)
class Typedef:
    """A named alias of another type."""

    name: str
    module: str
    target: Type
    doc: str = ""
    pos: Pos = NO_POS


Type: TypeAlias = BaseType | ListType | SetType | MapType | Enum | Record | Typedef
#: A type with every typedef looked through.
ResolvedType: TypeAlias = BaseType | ListType | SetType | MapType | Enum | Record


@dataclasses.dataclass(frozen=True)
class EnumMember:
    """A constant value that names an enum value."""

    enum: Enum
    value: EnumValue


@dataclasses.dataclass(frozen=True)
class ListValue:
    """A list or set constant (``is_set`` tells which)."""

    items: tuple[ConstValue, ...]
    is_set: bool = False


@dataclasses.dataclass(frozen=True)
class MapValue:
    """A map constant, pairs in source order."""

    pairs: tuple[tuple[ConstValue, ConstValue], ...]


ConstValue: TypeAlias = bool | int | float | str | bytes | EnumMember | ListValue | MapValue


@dataclasses.dataclass(eq=False)
class Const:
    """A named constant with its checked value."""

    name: str
    module: str
    type: Type
    value: ConstValue
    doc: str = ""
    pos: Pos = NO_POS


@dataclasses.dataclass(eq=False)
class Throw:
    """A declared exception of a method."""

    number: int
    name: str
    record: Record


@dataclasses.dataclass(eq=False)
class Method:
    """A method with its (explicit or derived) number; ``result`` is ``None`` for `void`."""

    name: str
    number: int
    params: list[Field]
    result: Type | None
    throws: list[Throw]
    oneway: bool = False
    idempotent: bool = False
    doc: str = ""
    pos: Pos = NO_POS


@dataclasses.dataclass(eq=False)
class Service:
    """One version of a service."""

    name: str
    version: int
    methods: list[Method]
    doc: str = ""
    pos: Pos = NO_POS


Definition: TypeAlias = Const | Typedef | Enum | Record | Service


@dataclasses.dataclass(eq=False)
class Module:
    """One checked file. ``name`` is the file stem; ``includes`` are the stems it includes."""

    name: str
    path: str
    includes: list[str] = dataclasses.field(default_factory=list)
    definitions: list[Definition] = dataclasses.field(default_factory=list)


def resolve_alias(t: Type) -> ResolvedType:
    """The type behind any chain of typedefs."""
    while isinstance(t, Typedef):
        t = t.target
    return t
