"""Every IDL type family travels as argument and result through client, transport and server."""

from __future__ import annotations

import trio

from tests.runtime.harness import sim_lab
from tests.runtime.lab_service import Bag, Color, LabClient, Node, Point, Scalars, Shape


async def test_every_scalar_type_round_trips(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_lab() as (_, _, client):
        lab = LabClient(client)
        got = await lab.scalars(True, -128, -32768, -(2**31), -(2**63), 255, 65535, 2**32 - 1,
                                2**64 - 1, 1.5, -2.25)
    assert got == Scalars(flag=True, tiny=-128, small=-32768, mid=-(2**31), big=-(2**63),
                          ubyte=255, ushort=65535, uint=2**32 - 1, ulong=2**64 - 1, single=1.5,
                          double=-2.25)


async def test_strings_and_bytes_round_trip(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_lab() as (_, _, client):
        got = await LabClient(client).texts("ünï", b"\x00\xff", "x" * 5000, bytes(range(256)))
    assert got == ["ünï", "00ff", "x" * 5000, bytes(range(256)).hex()]


async def test_containers_round_trip(autojump_clock: trio.testing.MockClock) -> None:
    where = {Point(x=1, y=2): "a", Point(x=-3): "b"}
    async with sim_lab() as (_, _, client):
        got = await LabClient(client).containers(
            [1, 2, 3], frozenset({Color.RED, Color.BLUE}), {"k": 7}, where
        )
    assert got == Bag(items=[3, 2, 1], colors=frozenset({Color.RED, Color.BLUE}),
                      counts={"k": 7}, where=where)
    assert isinstance(got.colors, frozenset)
    assert all(isinstance(c, Color) for c in got.colors)


async def test_unions_enums_optionals_and_recursive_structs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    chain = Node(value=1, label="one", next=Node(value=2))
    async with sim_lab() as (_, _, client):
        lab = LabClient(client)
        assert await lab.shape(Shape(point=Point(x=4))) == Shape(radius=4.0)
        assert await lab.shape(Shape(radius=2.0)) == Shape(point=Point(x=2))
        assert await lab.color(Color.RED) is Color.BLUE
        assert await lab.maybe(5) == "5"
        assert await lab.maybe(None) == "absent"
        assert await lab.node(chain) == Node(value=2, label="one", next=chain)
