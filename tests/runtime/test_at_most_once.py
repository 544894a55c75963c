"""At-most-once execution: lossy replies, duplicated requests, replayed calls, restarts."""

from __future__ import annotations

import collections

import pytest
import trio

import rpc
from rpc.calls import callproto
from rpc.calls._call_table import reply_of
from rpc.calls.reply_cache import ENTRY_OVERHEAD
from rpc.errors import CallOutcome
from rpc.testing import LinkFaults, SimNetwork
from tests.runtime.harness import SERVER_ADDR, HeldBump, LabImpl, sim_lab, sim_server
from tests.runtime.lab_service import LAB_V2, LabClient

BUMP = LAB_V2.methods[10]


async def test_lossy_replies_and_duplicated_requests_never_execute_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    net = SimNetwork(11)
    client_sock = net.socket(("10.0.0.2", 5000))
    net.set_faults(client_sock.getsockname(), SERVER_ADDR, LinkFaults(duplicate=0.5, reorder=0.2))
    net.set_faults(SERVER_ADDR, client_sock.getsockname(), LinkFaults(loss=0.3))
    returned: list[int] = []

    async def bump(lab: LabClient) -> None:
        returned.append(await lab.bump("k", timeout=30.0))

    async with sim_server(net, [impl]) as server, rpc.connect(
        *SERVER_ADDR, socket=client_sock
    ) as client:
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            for _ in range(60):
                nursery.start_soon(bump, lab)
                await trio.sleep(0.001)
        server_stats = server.statistics()
    faults = net.statistics()
    assert faults.duplicated > 0
    assert faults.dropped > 0
    assert sorted(returned) == list(range(1, 61))  # each result once: no call ran twice
    assert impl.counters["k"] == 60
    assert server_stats.calls_completed == 60


async def test_replayed_call_message_gets_the_cached_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A duplicate that gets past the transport (here: sent twice on purpose) runs once."""
    impl = LabImpl()
    async with sim_lab(impl) as (_, server, client):
        assert await LabClient(client).bump("k") == 1  # learns the server epoch
        table = client._table
        pending, payload = table.build_call(LAB_V2, BUMP, BUMP.encode_args(("k",)), None)
        for _ in range(3):
            table.sent(pending, client._driver.send_message(SERVER_ADDR, payload))
            await trio.sleep(0.05)
        assert pending.result is not None
        reply = reply_of(pending.result)
        assert reply is not None
        status, body = reply
        stats = server.statistics().reply_cache
    assert (status, body) == (callproto.Status.OK, 2)
    assert impl.counters["k"] == 2
    assert stats.hits + stats.duplicates_ignored == 2


async def test_acked_replies_are_released_from_the_cache(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, server, client):
        lab = LabClient(client)
        for _ in range(20):
            await lab.bump("k")
        await trio.sleep(1.0)  # let the last reply's ack arrive
        stats = server.statistics().reply_cache
    assert stats.bytes <= 2 * 200  # only tombstones (no reply bytes) remain, at most two
    assert stats.entries <= 2
    assert stats.released >= 18


async def test_restarted_server_is_detected_and_never_runs_old_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(12)
    first, second = LabImpl(), LabImpl()
    async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
        lab = LabClient(client)
        errors: list[rpc.RpcError] = []

        async def outstanding() -> None:
            try:
                await lab.sleep(1000.0)
            except rpc.RpcError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            async with trio.open_nursery() as server_nursery:
                old = rpc.Server([first], socket=net.socket(SERVER_ADDR))
                await server_nursery.start(old.serve)
                assert await lab.bump("k") == 1
                nursery.start_soon(outstanding)
                await first.sleep_started.wait()
                server_nursery.cancel_scope.cancel()  # crash: no graceful shutdown
            new = rpc.Server([second], socket=net.socket(SERVER_ADDR))
            await nursery.start(new.serve)
            assert new.epoch != old.epoch
            with pytest.raises(rpc.ServerRestarted):  # it too was made before we knew
                await client.ping(timeout=5.0)  # any exchange reveals the new epoch
            assert await lab.bump("k", timeout=5.0) == 1  # fresh server state
            await new.shutdown(grace=1.0)
    assert len(errors) == 1
    assert isinstance(errors[0], rpc.ServerRestarted)
    assert second.sleeping == 0
    assert second.sleep_started.is_set() is False


async def test_call_addressed_to_an_earlier_server_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl) as (_, _, client):
        table = client._table
        await client.ping()
        table.server_epoch ^= 0x5A5A  # as if the call were made to a previous incarnation
        with pytest.raises(rpc.ServerRestarted) as info:
            await LabClient(client).bump("k")
    assert info.value.outcome is CallOutcome.NOT_EXECUTED
    assert impl.counters["k"] == 0


async def test_closing_client_acknowledges_its_last_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(13)
    async with sim_server(net, [LabImpl()]) as server:
        async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
            assert await LabClient(client).bump("k") == 1
            held = server.statistics().reply_cache
        released = server.statistics().reply_cache
    assert held.bytes > held.entries * ENTRY_OVERHEAD  # the reply was still cached
    assert released.bytes == released.entries * ENTRY_OVERHEAD  # acknowledged on close


@pytest.mark.parametrize("seed", [21, 22, 23])
async def test_every_outcome_agrees_with_what_the_server_did_under_chaos(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    """Loss, duplication, reordering and corruption both ways; short deadlines.

    For each call (its own counter key): success ⇒ ran exactly once; NOT_DELIVERED or
    NOT_EXECUTED ⇒ did not run; anything else ⇒ ran at most once.
    """
    chaos = LinkFaults(
        loss=0.3, duplicate=0.2, reorder=0.2, corrupt=0.05, delay=0.005, jitter=0.01
    )
    impl = LabImpl()
    outcomes: dict[str, str] = {}

    async def one(lab: LabClient, key: str, timeout: float) -> None:
        try:
            assert await lab.bump(key, timeout=timeout) == 1
            outcomes[key] = "ok"
        except rpc.RpcError as exc:
            outcomes[key] = exc.outcome.name

    async with sim_lab(impl, faults=chaos, seed=seed) as (net, _, client):
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            for i in range(80):
                nursery.start_soon(one, lab, f"k{i}", 0.01 + (i % 8) * 0.02)
                await trio.sleep(0.002)
        await trio.sleep(5.0)  # let retransmitted stragglers arrive (and be refused or ignored)
    assert net.statistics().dropped > 0
    assert len(outcomes) == 80
    kinds = collections.Counter(outcomes.values())
    assert kinds["ok"] > 0
    assert kinds["UNKNOWN"] > 0  # deadlines hit calls in every state, so the check has teeth
    for key, outcome in outcomes.items():
        runs = impl.counters[key]
        assert runs <= 1, key
        if outcome == "ok":
            assert runs == 1, key
        elif outcome in ("NOT_DELIVERED", "NOT_EXECUTED"):
            assert runs == 0, key


async def test_closed_client_session_is_released_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(14)
    async with sim_server(net, [LabImpl()]) as server:
        async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
            assert await LabClient(client).bump("k") == 1
            held = server.statistics().reply_cache
        await trio.sleep(0.001)  # the CLOSE crosses the (instant) simulated network
        released = server.statistics().reply_cache
    assert (held.sessions, held.entries) == (1, 1)
    assert (released.sessions, released.entries, released.bytes) == (0, 0, 0)
    assert server.statistics().transport.retransmissions == 0


async def test_call_running_when_its_client_closes_finishes_without_a_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(15)
    impl = HeldBump()
    async with sim_server(net, [impl]) as server:
        async def call_then_close() -> None:
            async with (
                rpc.connect(*SERVER_ADDR, socket=net.socket()) as client,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(LabClient(client).bump, "k")
                await impl.entered.wait()
                client.close()  # the running call fails ClientClosed; the block ends

        with pytest.raises(rpc.ClientClosed):
            await call_then_close()
        await trio.sleep(0.001)  # the CLOSE crosses the (instant) simulated network
        closing = server.statistics()
        impl.release.set()
        await trio.sleep(1.0)
        done = server.statistics()
    assert impl.counters["k"] == 1  # the handler finished
    assert (closing.reply_cache.sessions, closing.reply_cache.running) == (1, 1)
    assert (done.reply_cache.sessions, done.reply_cache.entries) == (0, 0)
    assert done.transport.messages_sent == closing.transport.messages_sent  # no reply sent
