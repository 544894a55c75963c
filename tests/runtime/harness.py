"""Test implementation of the Lab service and helpers that wire servers and clients together."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Sequence

import trio

import rpc
from rpc.testing import LinkFaults, SimNetwork
from tests.runtime.lab_service import (
    Bag,
    Color,
    DivideByZero,
    LabHandler,
    LabV1Handler,
    Node,
    Point,
    Scalars,
    Shape,
)

SERVER_ADDR = ("10.0.0.1", 7000)


class LabImpl(LabHandler):
    """Lab v2, recording what it saw so tests can check the server side."""

    def __init__(self) -> None:
        self.counters: collections.Counter[str] = collections.Counter()
        self.records: list[str] = []
        self.seen: list[object] = []
        self.sleeping = 0
        self.sleep_started = trio.Event()
        self.sleep_cancelled = 0
        self.sleep_finished = 0

    async def scalars(
        self, flag: bool, tiny: int, small: int, mid: int, big: int, ubyte: int, ushort: int,
        uint: int, ulong: int, single: float, double: float,
    ) -> Scalars:
        return Scalars(flag=flag, tiny=tiny, small=small, mid=mid, big=big, ubyte=ubyte,
                       ushort=ushort, uint=uint, ulong=ulong, single=single, double=double)

    async def texts(self, name: str, blob: bytes, free: str, raw: bytes) -> list[str]:
        return [name, blob.hex(), free, raw.hex()]

    async def containers(
        self, items: list[int], colors: frozenset[Color], counts: dict[str, int],
        where: dict[Point, str],
    ) -> Bag:
        self.seen.append((items, colors, counts, where))
        return Bag(items=items[::-1], colors=colors, counts=counts, where=where)

    async def shape(self, s: Shape) -> Shape:
        if s.point is not None:
            return Shape(radius=float(s.point.x))
        return Shape(point=Point(x=int(s.radius or 0)))

    async def node(self, n: Node) -> Node:
        return Node(value=n.value + 1, label=n.label, next=n)

    async def color(self, c: Color) -> Color:
        return Color.BLUE if c is Color.RED else Color.RED

    async def maybe(self, x: int | None) -> str:
        return "absent" if x is None else str(x)

    async def divide(self, a: int, b: int) -> float:
        if b == 0:
            raise DivideByZero(dividend=a)
        return a / b

    async def crash(self, message: str) -> None:
        raise KeyError(message)

    async def sleep(self, seconds: float) -> None:
        self.sleeping += 1
        self.sleep_started.set()
        try:
            await trio.sleep(seconds)
        except trio.Cancelled:
            self.sleep_cancelled += 1
            raise
        finally:
            self.sleeping -= 1
        self.sleep_finished += 1

    async def bump(self, key: str) -> int:
        self.counters[key] += 1
        return self.counters[key]

    async def record(self, text: str) -> None:
        self.records.append(text)

    async def blocking_sum(self, values: list[int]) -> int:
        return await rpc.run_sync_in_thread(sum, values)

    async def whoami(self) -> str:
        call = rpc.current_call()
        assert call is not None
        remaining = call.remaining()
        budget = "none" if remaining is None else f"{remaining:.1f}"
        return f"{call.service} v{call.version} {call.method} #{call.call_number} {budget}"


class HeldBump(LabImpl):
    """``bump`` (a cached call) holds its handler slot until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = trio.Event()
        self.release = trio.Event()

    async def bump(self, key: str) -> int:
        self.entered.set()
        await self.release.wait()
        return await super().bump(key)


class LabV1Impl(LabV1Handler):
    """Lab v1."""

    async def legacy(self) -> str:
        return "v1"


@contextlib.asynccontextmanager
async def sim_server(
    net: SimNetwork, handlers: Sequence[rpc.Handler], **options: object
) -> AsyncIterator[rpc.Server]:
    """Serve ``handlers`` on the simulated network at ``SERVER_ADDR``."""
    server = rpc.Server(handlers, socket=net.socket(SERVER_ADDR), **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        await server.shutdown(grace=1.0)


@contextlib.asynccontextmanager
async def sim_lab(
    impl: LabImpl | None = None,
    *,
    faults: LinkFaults | None = None,
    seed: int = 1,
    **options: object,
) -> AsyncIterator[tuple[SimNetwork, rpc.Server, rpc.Client]]:
    """A Lab v1+v2 server and a connected client on a simulated network."""
    net = SimNetwork(seed) if faults is None else SimNetwork(seed, faults=faults)
    handlers = [impl if impl is not None else LabImpl(), LabV1Impl()]
    async with sim_server(net, handlers, **options) as server, rpc.connect(
        *SERVER_ADDR, socket=net.socket()
    ) as client:
        yield net, server, client
