"""Scenario 16: restarts are told apart from crashes, and a call that never ran says so.

A graceful shutdown drains (finishes what it received) and closes each session with a drained
CLOSE: the client then knows that what it still awaits never reached that server, and its
next call simply finds the successor. After a crash and restart, a call whose only
transmission reached the new incarnation (which answers it with an epoch notice) was never
executed by anyone: ``NOT_EXECUTED``, safe to retry. Only a call the old incarnation may have
received stays ``UNKNOWN``."""

from __future__ import annotations

import trio

import rpc
from rpc.testing import LinkFaults, simulated_service
from tests.acceptance.helpers import Ledger, apply_checked
from tests.acceptance.service import Chaos

BOUND = 60.0  # virtual seconds


async def test_s16_graceful_restart_between_calls_costs_no_error(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    old, new = chaos.impl(), chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([old], seed=16) as sim:
            client = chaos.client(sim.client)
            await apply_checked(client, ledger, 1, timeout=5.0)
            await sim.stop_server()  # drains, then a drained CLOSE to the client
            await sim.start_server([new])
            await apply_checked(client, ledger, 2, timeout=5.0)  # finds the new server
            stats = sim.client.statistics()
    assert ledger.returned == {1, 2}
    assert not ledger.failed
    assert stats.calls_failed == {}
    assert stats.transport.peers_closed == 1  # the CLOSE did arrive
    assert old.executions == {1: 1}
    assert new.executions == {2: 1}


async def test_s16_calls_outstanding_at_a_graceful_shutdown_were_never_received(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    results: dict[int, object] = {}
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=16) as sim:
            client = chaos.client(sim.client)

            async def slow(i: int) -> None:
                try:
                    results[i] = await client.slow(i, 1.0, timeout=30.0)
                except rpc.RpcError as exc:
                    results[i] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow, 1)
                await impl.any_started.wait()
                stopping = trio.Event()

                async def stop() -> None:
                    stopping.set()
                    await sim.stop_server(grace=10.0)

                nursery.start_soon(stop)
                await stopping.wait()
                await trio.sleep(0.1)  # the server drains: it refuses new calls
                nursery.start_soon(slow, 2)
            await sim.start_server([chaos.impl()])
    assert results[1] == 1  # the running call finished and its reply was delivered
    refused = results[2]
    assert isinstance(refused, rpc.ShuttingDown)
    assert refused.safe_to_retry
    assert impl.started == {1: 1}


async def test_s16_call_reaching_only_the_new_incarnation_is_not_executed(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    old, new = chaos.impl(), chaos.impl()
    ledger = Ledger()
    with trio.fail_after(BOUND):
        async with simulated_service([old], seed=16) as sim:
            client = chaos.client(sim.client)
            await apply_checked(client, ledger, 1, timeout=5.0)
            await sim.kill_server()  # a crash: no CLOSE, the client does not know
            await sim.start_server([new])
            await apply_checked(client, ledger, 2, timeout=5.0)  # meets the new incarnation
            await apply_checked(client, ledger, 3, timeout=5.0)  # the client knows it now
            notices = sim.server.statistics().transport.epoch_notices_sent
    error = ledger.failed[2]
    assert isinstance(error, rpc.ServerRestarted)
    assert error.outcome is rpc.CallOutcome.NOT_EXECUTED
    assert error.safe_to_retry
    assert notices >= 1  # the new incarnation answered the call with an epoch notice
    assert ledger.returned == {1, 3}
    assert old.executions == {1: 1}
    assert new.executions == {3: 1}
    ledger.check_at_most_once(old.executions + new.executions)


async def test_s16_drained_close_says_an_undelivered_call_never_ran(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    results: list[rpc.RpcError] = []
    with trio.fail_after(BOUND):
        async with simulated_service([impl], seed=16) as sim:
            client = chaos.client(sim.client)
            await client.slow(1, 0.0, timeout=5.0)  # the client knows the server
            await trio.sleep(0.1)  # and has acknowledged the reply (else the close is not drained)
            client_addr = sim.client.local_address
            # Client-to-server traffic is lost from now on; server-to-client still flows.
            sim.network.set_faults(client_addr, sim.address, LinkFaults(loss=1.0))

            async def doomed() -> None:
                try:
                    await client.slow(2, 0.0, timeout=30.0)
                except rpc.RpcError as exc:
                    results.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(doomed)
                await trio.sleep(0.5)  # its CALL is being retransmitted into the void
                await sim.stop_server()  # nothing to drain: a drained CLOSE
            sim.network.set_faults(client_addr, sim.address, LinkFaults())
            await sim.start_server([chaos.impl()])
    (error,) = results
    assert isinstance(error, rpc.ShuttingDown)
    assert error.outcome is rpc.CallOutcome.NOT_EXECUTED  # the drained CLOSE vouches for it
    assert impl.started == {1: 1}
