"""Hand-written records and descriptors shaped like rpcgen output, for the schema tests."""

from __future__ import annotations

import dataclasses
import enum

import rpc
from rpc.calls import schema


class Color(enum.IntEnum):
    """A small enum."""

    RED = 1
    GREEN = 2
    BLUE = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class Point:
    """A hashable record, used as a map key and set element."""

    x: int
    y: int = 0


@dataclasses.dataclass(kw_only=True)
class Node:
    """A recursive record (a linked list)."""

    value: int
    label: str | None = None
    next: Node | None = None


@dataclasses.dataclass(kw_only=True)
class Shape:
    """A union: exactly one member set."""

    point: Point | None = None
    radius: float | None = None


@dataclasses.dataclass(kw_only=True)
class Bag:
    """A record using every container."""

    names: list[str] = dataclasses.field(default_factory=list)
    tags: frozenset[Color] = frozenset()
    where: dict[Point, str] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    blob: bytes = b""
    shape: Shape | None = None


@dataclasses.dataclass(eq=False, kw_only=True)
class DivideByZero(rpc.ApplicationError):
    """A declared exception."""

    dividend: int

    def __post_init__(self) -> None:
        super().__init__(repr(self))


COLOR = schema.EnumOf(Color)
POINT = schema.StructOf(Point)
NODE = schema.StructOf(Node)
SHAPE = schema.UnionOf(Shape)
BAG = schema.StructOf(Bag)
DIVIDE_BY_ZERO = schema.ExceptionOf(DivideByZero)
POINT.define([
    schema.Field(1, "x", "x", schema.I32),
    schema.Field(2, "y", "y", schema.I32, default=0),
])
NODE.define([
    schema.Field(1, "value", "value", schema.I64),
    schema.Field(2, "label", "label", schema.String(8), optional=True),
    schema.Field(3, "next", "next", NODE, optional=True),
])
SHAPE.define([
    schema.Field(1, "point", "point", POINT, optional=True),
    schema.Field(2, "radius", "radius", schema.F64, optional=True),
])
BAG.define([
    schema.Field(1, "names", "names", schema.ListOf(schema.String(16), 4), default=[]),
    schema.Field(2, "tags", "tags", schema.SetOf(COLOR), default=frozenset()),
    schema.Field(3, "where", "where", schema.MapOf(POINT, schema.STRING), default={}),
    schema.Field(4, "counts", "counts", schema.MapOf(schema.STRING, schema.U8, 3), default={}),
    schema.Field(5, "blob", "blob", schema.Bytes(32), default=b""),
    schema.Field(6, "shape", "shape", SHAPE, optional=True),
])
DIVIDE_BY_ZERO.define([schema.Field(1, "dividend", "dividend", schema.I32)])

DIVIDE = rpc.MethodSpec[float](
    name="divide",
    number=4,
    params=(rpc.Param(1, "a", schema.I32), rpc.Param(2, "b", schema.I32)),
    result=schema.F64,
    throws=((1, DIVIDE_BY_ZERO),),
    idempotent=True,
    doc="Divide a by b.",
)
NOTE = rpc.MethodSpec[None](
    name="note",
    number=5,
    params=(rpc.Param(1, "text", schema.STRING), rpc.Param(2, "node", NODE, optional=True)),
    result=None,
    oneway=True,
)
SERVICE = rpc.ServiceSpec(name="Calc", version=1, methods=(DIVIDE, NOTE))
