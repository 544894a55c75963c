"""Generated clients and handlers through the real runtime: two versions of one service served
side by side, declared exceptions, optional parameters, sets and maps of records."""

from __future__ import annotations

import collections.abc

import pytest
import trio
from generated_modules import load_modules

import rpc
from codegen.regen_golden import EXPECTED_DIR
from rpc.testing import SimNetwork

MODULES = load_modules(EXPECTED_DIR, ["shapes", "drawing"])
shapes, drawing = MODULES["shapes"], MODULES["drawing"]
SERVER = ("10.0.0.1", 7000)


class Store:
    """The layers both versions of the handler share."""

    def __init__(self) -> None:
        self.layers: dict[str, object] = {}


class SharedMethods:
    """The methods v1 and v2 have in common (each handler class keeps its own SERVICE)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add_layer(self, layer: object) -> None:
        self.store.layers[layer.name] = layer  # type: ignore[attr-defined]

    async def get_layer(self, name: str) -> object:
        if name not in self.store.layers:
            raise drawing.NoSuchLayer(name=name)
        return self.store.layers[name]


class DrawingV1(SharedMethods, drawing.DrawingV1Handler):  # type: ignore[misc, name-defined]
    """Version 1: only the shared methods."""


class DrawingV2(SharedMethods, drawing.DrawingV2Handler):  # type: ignore[misc, name-defined]
    """Version 2 adds bulk queries."""

    async def all_layers(self) -> collections.abc.Mapping[str, object]:
        return self.store.layers

    async def pins_of(self, names: frozenset[str], only: object | None) -> frozenset[object]:
        pins = set()
        for name in names:
            layer = self.store.layers[name]
            if only is None or layer.color == only:  # type: ignore[attr-defined]
                pins |= layer.pins  # type: ignore[attr-defined]
        return frozenset(pins)


async def test_two_versions_side_by_side(autojump_clock: trio.testing.MockClock) -> None:
    store = Store()
    net = SimNetwork(5)
    server = rpc.Server([DrawingV1(store), DrawingV2(store)], socket=net.socket(SERVER))
    layer = drawing.Layer(
        name="base",
        shapes_=[shapes.Shape(dot=shapes.Point(x=1)), shapes.Shape(circle_radius=2.5)],
        pins=frozenset({shapes.Point(x=1, y=2)}),
        palette={shapes.Point(x=0): shapes.Color.VIOLET},
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with rpc.connect(*SERVER, socket=net.socket()) as conn:
            old, new = drawing.DrawingV1Client(conn), drawing.DrawingClient(conn)
            assert drawing.DrawingClient is drawing.DrawingV2Client
            await old.add_layer(layer)
            assert await old.get_layer("base") == layer
            assert await new.all_layers(timeout=5.0) == {"base": layer}
            assert await new.pins_of({"base"}, None) == frozenset({shapes.Point(x=1, y=2)})
            assert await new.pins_of({"base"}, shapes.Color.RED) == frozenset()
            with pytest.raises(drawing.NoSuchLayer) as info:
                await new.get_layer("missing")
            assert info.value.name == "missing"
            assert info.value.outcome is rpc.CallOutcome.EXECUTED
        await server.shutdown(grace=1.0)
