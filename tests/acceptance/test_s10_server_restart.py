"""Scenario 10: the server is killed mid-call and restarted. The caller gets the documented
error (``ServerRestarted``), the new server never runs calls sent to the old one, and new calls
work."""

from __future__ import annotations

import trio

import rpc
from rpc.testing import simulated_service
from tests.acceptance.helpers import Ledger, apply_checked
from tests.acceptance.service import Chaos

BOUND = 120.0  # virtual seconds
DOWN_CALLS = range(100, 110)  # calls made while no server runs


async def test_s10_killed_server_restarts_without_rerunning_old_calls(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    old, new = chaos.impl(), chaos.impl()
    ledger = Ledger()
    errors: list[rpc.RpcError] = []
    with trio.fail_after(BOUND):
        async with simulated_service([old], seed=10) as sim:
            client = chaos.client(sim.client)
            await apply_checked(client, ledger, 1)
            first_epoch = sim.server.epoch

            async def slow_call() -> None:
                try:
                    await client.slow(2, 1000.0, timeout=100.0)
                except rpc.RpcError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_call)
                await old.any_started.wait()
                await sim.kill_server()  # mid-call: no reply, no graceful shutdown
                for i in DOWN_CALLS:
                    nursery.start_soon(lambda i=i: apply_checked(client, ledger, i, timeout=20.0))
                await trio.sleep(1.0)  # their datagrams reach nobody
                await sim.start_server([new])
            assert sim.server.epoch != first_epoch
            for i in range(200, 210):  # after the restart, calls work again
                await apply_checked(client, ledger, i, timeout=5.0)
    assert len(errors) == 1
    assert isinstance(errors[0], rpc.ServerRestarted)
    assert errors[0].outcome is rpc.CallOutcome.UNKNOWN  # the old server may have run it
    assert old.started == {2: 1}
    assert old.executions == {1: 1}  # killed before the slow call finished
    assert not new.started  # the slow call was never re-run
    for i in DOWN_CALLS:  # sent to the old server: refused by the new one, never run
        assert isinstance(ledger.failed[i], rpc.ServerRestarted)
        assert new.executions[i] == 0
    assert ledger.returned == {1, *range(200, 210)}
    ledger.check_at_most_once(old.executions + new.executions)  # across both incarnations
    assert all(new.executions[i] == 1 for i in range(200, 210))
    assert sim.network.statistics().dropped_unreachable > 0  # the server really was gone
