"""rpc.testing.simulated_service: the few-line way to test a generated service (docs/testing.md)."""

from __future__ import annotations

import pytest
import trio

import rpc
from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.service import Chaos, payload


async def test_documented_example_runs_a_service_under_faults(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    async with simulated_service([impl], seed=1, faults=LinkFaults(loss=0.3)) as sim:
        echo = await chaos.client(sim.client).apply(7, payload(7))
        async with sim.connect() as other:
            assert (await chaos.client(other).apply(8, b"x")).data == b"x"
        address = sim.address
    assert echo.data == payload(7)
    assert impl.executions == {7: 1, 8: 1}
    assert address == rpc.testing.DEFAULT_SERVER_ADDRESS
    assert sim.network.statistics().dropped_loss > 0
    assert not list(sim.network.sockets())  # everything was closed on the way out


async def test_killed_server_frees_its_address_and_restarts_with_a_new_epoch(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    async with simulated_service([chaos.impl()]) as sim:
        first = sim.server.epoch
        await sim.kill_server()
        with pytest.raises(rpc.RpcError):
            sim.server  # noqa: B018  (the property raises while no server runs)
        second = await sim.start_server([chaos.impl()])
        with pytest.raises(rpc.RpcError):
            await sim.start_server()  # one at a time
        assert sim.server is second
    assert second.epoch != first


async def test_an_error_in_the_block_stops_everything_and_propagates(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    networks = []

    async def failing_test_body() -> None:
        async with simulated_service([chaos.impl()]) as sim:
            networks.append(sim.network)
            await chaos.client(sim.client).apply(1, b"")
            raise ZeroDivisionError

    # The harness runs tasks, but (as with rpc.connect) the error arrives as itself, unwrapped.
    with pytest.raises(ZeroDivisionError):
        await failing_test_body()
    assert not list(networks[0].sockets())  # the server was killed, the client closed
