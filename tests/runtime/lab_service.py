# Hand-written in the shape rpcgen emits (Contract 1), until generated code exists.
"""A test service, ``Lab`` versions 1 and 2, covering every IDL type family.

Equivalent IDL::

    enum Color { RED = 1; GREEN = 2; BLUE = 10; }
    struct Point { 1: i32 x; 2: i32 y = 0; }
    struct Node { 1: i64 value; 2: optional string<8> label; 3: optional Node next; }
    union Shape { 1: Point point; 2: f64 radius; }
    struct Scalars { 1: bool flag; 2: i8 tiny; 3: i16 small; 4: i32 mid; 5: i64 big;
                     6: u8 ubyte; 7: u16 ushort; 8: u32 uint; 9: u64 ulong; 10: f32 single;
                     11: f64 double; }
    struct Bag { 1: list<i32> items; 2: set<Color> colors; 3: map<string, u8> counts;
                 4: map<Point, string> where; }
    exception DivideByZero { 1: i32 dividend; }
    service Lab version 1 { string legacy(); }
    service Lab version 2 {
        Scalars scalars(1: bool flag, ..., 11: f64 double);
        list<string> texts(1: string<8> name, 2: bytes<16> blob, 3: string free, 4: bytes raw);
        Bag containers(1: list<i32> items, 2: set<Color> colors, 3: map<string, u8> counts,
                       4: map<Point, string> where);
        Shape shape(1: Shape s);
        Node node(1: Node n);
        Color color(1: Color c);
        string maybe(1: optional i32 x);
        f64 divide(1: i32 a, 2: i32 b) throws (1: DivideByZero);
        void crash(1: string message);
        idempotent void sleep(1: f64 seconds);
        u64 bump(1: string key);
        oneway void record(1: string text);
        i64 blocking_sum(1: list<i64> values);
        string whoami();
    }
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from typing import ClassVar

import rpc
from rpc.calls import schema


class Color(enum.IntEnum):
    """A colour."""

    RED = 1
    GREEN = 2
    BLUE = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class Point:
    """A point (hashable: a map key)."""

    x: int
    y: int = 0


@dataclasses.dataclass(kw_only=True)
class Node:
    """A linked list node (recursive)."""

    value: int
    label: str | None = None
    next: Node | None = None


@dataclasses.dataclass(kw_only=True)
class Shape:
    """A union."""

    point: Point | None = None
    radius: float | None = None


@dataclasses.dataclass(kw_only=True)
class Scalars:
    """Every base numeric type."""

    flag: bool
    tiny: int
    small: int
    mid: int
    big: int
    ubyte: int
    ushort: int
    uint: int
    ulong: int
    single: float
    double: float


@dataclasses.dataclass(kw_only=True)
class Bag:
    """Every container type."""

    items: list[int]
    colors: frozenset[Color]
    counts: dict[str, int]
    where: dict[Point, str]


@dataclasses.dataclass(eq=False, kw_only=True)
class DivideByZero(rpc.ApplicationError):
    """Division by zero."""

    dividend: int

    def __post_init__(self) -> None:
        super().__init__(f"DivideByZero(dividend={self.dividend!r})")


COLOR = schema.EnumOf(Color)
POINT = schema.StructOf(Point, "Point")
NODE = schema.StructOf(Node, "Node")
SHAPE = schema.UnionOf(Shape, "Shape")
SCALARS = schema.StructOf(Scalars, "Scalars")
BAG = schema.StructOf(Bag, "Bag")
DIVIDE_BY_ZERO = schema.ExceptionOf(DivideByZero, "DivideByZero")
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
_SCALAR_TYPES = (
    ("flag", schema.BOOL), ("tiny", schema.I8), ("small", schema.I16), ("mid", schema.I32),
    ("big", schema.I64), ("ubyte", schema.U8), ("ushort", schema.U16), ("uint", schema.U32),
    ("ulong", schema.U64), ("single", schema.F32), ("double", schema.F64),
)
SCALARS.define([
    schema.Field(number, name, name, desc)
    for number, (name, desc) in enumerate(_SCALAR_TYPES, start=1)
])
BAG.define([
    schema.Field(1, "items", "items", schema.ListOf(schema.I32)),
    schema.Field(2, "colors", "colors", schema.SetOf(COLOR)),
    schema.Field(3, "counts", "counts", schema.MapOf(schema.STRING, schema.U8)),
    schema.Field(4, "where", "where", schema.MapOf(POINT, schema.STRING)),
])
DIVIDE_BY_ZERO.define([schema.Field(1, "dividend", "dividend", schema.I32)])

_LEGACY = rpc.MethodSpec[str](name="legacy", number=1, params=(), result=schema.STRING)
LAB_V1 = rpc.ServiceSpec(name="Lab", version=1, methods=(_LEGACY,))

_SCALARS = rpc.MethodSpec[Scalars](
    name="scalars",
    number=1,
    params=tuple(
        rpc.Param(number, name, desc) for number, (name, desc) in enumerate(_SCALAR_TYPES, 1)
    ),
    result=SCALARS,
)
_TEXTS = rpc.MethodSpec[list[str]](
    name="texts",
    number=2,
    params=(
        rpc.Param(1, "name", schema.String(8)),
        rpc.Param(2, "blob", schema.Bytes(16)),
        rpc.Param(3, "free", schema.STRING),
        rpc.Param(4, "raw", schema.BYTES),
    ),
    result=schema.ListOf(schema.STRING),
)
_CONTAINERS = rpc.MethodSpec[Bag](
    name="containers",
    number=3,
    params=tuple(rpc.Param(f.number, f.name, f.type) for f in BAG.fields),
    result=BAG,
)
_SHAPE = rpc.MethodSpec[Shape](
    name="shape", number=4, params=(rpc.Param(1, "s", SHAPE),), result=SHAPE
)
_NODE = rpc.MethodSpec[Node](name="node", number=5, params=(rpc.Param(1, "n", NODE),), result=NODE)
_COLOR = rpc.MethodSpec[Color](
    name="color", number=6, params=(rpc.Param(1, "c", COLOR),), result=COLOR
)
_MAYBE = rpc.MethodSpec[str](
    name="maybe",
    number=7,
    params=(rpc.Param(1, "x", schema.I32, optional=True),),
    result=schema.STRING,
)
_DIVIDE = rpc.MethodSpec[float](
    name="divide",
    number=8,
    params=(rpc.Param(1, "a", schema.I32), rpc.Param(2, "b", schema.I32)),
    result=schema.F64,
    throws=((1, DIVIDE_BY_ZERO),),
)
_CRASH = rpc.MethodSpec[None](
    name="crash", number=9, params=(rpc.Param(1, "message", schema.STRING),), result=None
)
_SLEEP = rpc.MethodSpec[None](
    name="sleep",
    number=10,
    params=(rpc.Param(1, "seconds", schema.F64),),
    result=None,
    idempotent=True,
)
_BUMP = rpc.MethodSpec[int](
    name="bump", number=11, params=(rpc.Param(1, "key", schema.STRING),), result=schema.U64
)
_RECORD = rpc.MethodSpec[None](
    name="record",
    number=12,
    params=(rpc.Param(1, "text", schema.STRING),),
    result=None,
    oneway=True,
)
_BLOCKING_SUM = rpc.MethodSpec[int](
    name="blocking_sum",
    number=13,
    params=(rpc.Param(1, "values", schema.ListOf(schema.I64)),),
    result=schema.I64,
)
_WHOAMI = rpc.MethodSpec[str](name="whoami", number=14, params=(), result=schema.STRING)
LAB_V2 = rpc.ServiceSpec(
    name="Lab",
    version=2,
    methods=(
        _SCALARS, _TEXTS, _CONTAINERS, _SHAPE, _NODE, _COLOR, _MAYBE, _DIVIDE, _CRASH, _SLEEP,
        _BUMP, _RECORD, _BLOCKING_SUM, _WHOAMI,
    ),
)


class LabV1Client:
    """Async client of Lab version 1."""

    def __init__(self, caller: rpc.AsyncCaller) -> None:
        self._caller = caller

    async def legacy(self, *, timeout: float | None = None) -> str:
        """The only method of version 1."""
        return await self._caller.call(LAB_V1, _LEGACY, (), timeout=timeout)


class LabClient:
    """Async client of Lab version 2."""

    def __init__(self, caller: rpc.AsyncCaller) -> None:
        self._caller = caller

    async def scalars(
        self, flag: bool, tiny: int, small: int, mid: int, big: int, ubyte: int, ushort: int,
        uint: int, ulong: int, single: float, double: float, *, timeout: float | None = None,
    ) -> Scalars:
        """Echo every scalar type as a struct."""
        return await self._caller.call(
            LAB_V2, _SCALARS,
            (flag, tiny, small, mid, big, ubyte, ushort, uint, ulong, single, double),
            timeout=timeout,
        )

    async def texts(
        self, name: str, blob: bytes, free: str, raw: bytes, *, timeout: float | None = None
    ) -> list[str]:
        """Strings and bytes, bounded and not."""
        return await self._caller.call(LAB_V2, _TEXTS, (name, blob, free, raw), timeout=timeout)

    async def containers(
        self, items: list[int], colors: frozenset[Color], counts: dict[str, int],
        where: dict[Point, str], *, timeout: float | None = None,
    ) -> Bag:
        """Every container type."""
        return await self._caller.call(
            LAB_V2, _CONTAINERS, (items, colors, counts, where), timeout=timeout
        )

    async def shape(self, s: Shape, *, timeout: float | None = None) -> Shape:
        """A union."""
        return await self._caller.call(LAB_V2, _SHAPE, (s,), timeout=timeout)

    async def node(self, n: Node, *, timeout: float | None = None) -> Node:
        """A recursive struct."""
        return await self._caller.call(LAB_V2, _NODE, (n,), timeout=timeout)

    async def color(self, c: Color, *, timeout: float | None = None) -> Color:
        """An enum."""
        return await self._caller.call(LAB_V2, _COLOR, (c,), timeout=timeout)

    async def maybe(self, x: int | None = None, *, timeout: float | None = None) -> str:
        """An optional argument."""
        return await self._caller.call(LAB_V2, _MAYBE, (x,), timeout=timeout)

    async def divide(self, a: int, b: int, *, timeout: float | None = None) -> float:
        """Divide; raises DivideByZero."""
        return await self._caller.call(LAB_V2, _DIVIDE, (a, b), timeout=timeout)

    async def crash(self, message: str, *, timeout: float | None = None) -> None:
        """Raise an undeclared exception on the server."""
        return await self._caller.call(LAB_V2, _CRASH, (message,), timeout=timeout)

    async def sleep(self, seconds: float, *, timeout: float | None = None) -> None:
        """Sleep on the server."""
        return await self._caller.call(LAB_V2, _SLEEP, (seconds,), timeout=timeout)

    async def bump(self, key: str, *, timeout: float | None = None) -> int:
        """Increment a counter (a side effect that must happen at most once)."""
        return await self._caller.call(LAB_V2, _BUMP, (key,), timeout=timeout)

    async def record(self, text: str, *, timeout: float | None = None) -> None:
        """Oneway: remember a text."""
        return await self._caller.call(LAB_V2, _RECORD, (text,), timeout=timeout)

    async def blocking_sum(self, values: list[int], *, timeout: float | None = None) -> int:
        """Sum in a worker thread."""
        return await self._caller.call(LAB_V2, _BLOCKING_SUM, (values,), timeout=timeout)

    async def whoami(self, *, timeout: float | None = None) -> str:
        """Describe the call context the handler sees."""
        return await self._caller.call(LAB_V2, _WHOAMI, (), timeout=timeout)


class LabSyncClient:
    """Blocking client of Lab version 2 (a few methods suffice for the tests)."""

    def __init__(self, caller: rpc.SyncCaller) -> None:
        self._caller = caller

    def divide(self, a: int, b: int, *, timeout: float | None = None) -> float:
        """Divide; raises DivideByZero."""
        return self._caller.call(LAB_V2, _DIVIDE, (a, b), timeout=timeout)

    def bump(self, key: str, *, timeout: float | None = None) -> int:
        """Increment a counter."""
        return self._caller.call(LAB_V2, _BUMP, (key,), timeout=timeout)

    def record(self, text: str, *, timeout: float | None = None) -> None:
        """Oneway: remember a text."""
        return self._caller.call(LAB_V2, _RECORD, (text,), timeout=timeout)

    def containers(
        self, items: list[int], colors: frozenset[Color], counts: dict[str, int],
        where: dict[Point, str], *, timeout: float | None = None,
    ) -> Bag:
        """Every container type."""
        return self._caller.call(
            LAB_V2, _CONTAINERS, (items, colors, counts, where), timeout=timeout
        )


class LabV1Handler(rpc.Handler):
    """Implement Lab version 1."""

    SERVICE: ClassVar[rpc.ServiceSpec] = LAB_V1

    @abc.abstractmethod
    async def legacy(self) -> str:
        """The only method of version 1."""


class LabHandler(rpc.Handler):
    """Implement Lab version 2."""

    SERVICE: ClassVar[rpc.ServiceSpec] = LAB_V2

    @abc.abstractmethod
    async def scalars(
        self, flag: bool, tiny: int, small: int, mid: int, big: int, ubyte: int, ushort: int,
        uint: int, ulong: int, single: float, double: float,
    ) -> Scalars: ...
    @abc.abstractmethod
    async def texts(self, name: str, blob: bytes, free: str, raw: bytes) -> list[str]: ...
    @abc.abstractmethod
    async def containers(
        self, items: list[int], colors: frozenset[Color], counts: dict[str, int],
        where: dict[Point, str],
    ) -> Bag: ...
    @abc.abstractmethod
    async def shape(self, s: Shape) -> Shape: ...
    @abc.abstractmethod
    async def node(self, n: Node) -> Node: ...
    @abc.abstractmethod
    async def color(self, c: Color) -> Color: ...
    @abc.abstractmethod
    async def maybe(self, x: int | None) -> str: ...
    @abc.abstractmethod
    async def divide(self, a: int, b: int) -> float: ...
    @abc.abstractmethod
    async def crash(self, message: str) -> None: ...
    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None: ...
    @abc.abstractmethod
    async def bump(self, key: str) -> int: ...
    @abc.abstractmethod
    async def record(self, text: str) -> None: ...
    @abc.abstractmethod
    async def blocking_sum(self, values: list[int]) -> int: ...
    @abc.abstractmethod
    async def whoami(self) -> str: ...


# Specs of services and methods the server does not serve, for the error tests.
LAB_V3 = rpc.ServiceSpec(name="Lab", version=3, methods=(_LEGACY,))
NOPE_V1 = rpc.ServiceSpec(name="Nope", version=1, methods=(_LEGACY,))
MISSING_METHOD = rpc.MethodSpec[str](name="missing", number=99, params=(), result=schema.STRING)
