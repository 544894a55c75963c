"""Call semantics end to end on the simulated network: deadlines, cancellation, oneway,
concurrency, ping, marshal-by-value, backpressure, graceful shutdown, statistics."""

from __future__ import annotations

import logging

import pytest
import trio

import rpc
from rpc.errors import CallOutcome
from rpc.testing import LinkFaults, SimNetwork
from tests.runtime.harness import SERVER_ADDR, HeldBump, LabImpl, LabV1Impl, sim_lab, sim_server
from tests.runtime.lab_service import Color, LabClient, Point, Shape


async def test_deadline_cancels_sleeping_handler_and_no_late_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl) as (_, server, client):
        start = trio.current_time()
        with pytest.raises(rpc.DeadlineExceeded) as info:
            await LabClient(client).sleep(60.0, timeout=2.0)
        assert 2.0 <= trio.current_time() - start < 2.5
        await trio.sleep(1.0)
        stats = server.statistics()
    assert info.value.outcome is CallOutcome.UNKNOWN
    assert impl.sleep_cancelled == 1
    assert impl.sleep_finished == 0
    assert stats.calls_failed.get("DEADLINE") == 1


async def test_deadline_budget_travels_with_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, _, client):
        lab = LabClient(client)
        # Call #1 is the ping that learns the server's epoch before the first cached call.
        assert await lab.whoami(timeout=5.0) == "Lab v2 whoami #2 5.0"
        assert await lab.whoami() == "Lab v2 whoami #3 none"


async def test_cancelling_the_caller_cancels_the_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl) as (_, _, client):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(LabClient(client).sleep, 1000.0)
            await impl.sleep_started.wait()
            nursery.cancel_scope.cancel()
        for _ in range(100):  # the CANCEL travels to the server; bounded wait on the mock clock
            if impl.sleep_cancelled:
                break
            await trio.sleep(0.01)
        assert client.statistics().cancels_sent == 1
    assert impl.sleep_cancelled == 1
    assert impl.sleep_finished == 0


async def test_oneway_is_executed_once_without_a_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl) as (_, server, client):
        await LabClient(client).record("hello")  # returns once the transport has it
        for _ in range(100):
            if impl.records:
                break
            await trio.sleep(0.001)
        stats = server.statistics()
    assert impl.records == ["hello"]
    assert stats.calls_completed == 1


async def test_hundreds_of_concurrent_calls(autojump_clock: trio.testing.MockClock) -> None:
    results: list[int] = []
    impl = LabImpl()

    async def one(lab: LabClient) -> None:
        results.append(await lab.bump("n"))

    async with sim_lab(impl, max_concurrent=64) as (_, server, client):
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            for _ in range(400):
                nursery.start_soon(one, lab)
        stats = server.statistics()
    assert sorted(results) == list(range(1, 401))
    assert impl.counters["n"] == 400
    assert stats.calls_completed == 400


async def test_ping_is_a_round_trip(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_lab() as (_, server, client):
        rtt = await client.ping(timeout=1.0)
        assert rtt >= 0.0
        assert server.statistics().pings == 1


async def test_arguments_are_marshalled_when_the_call_is_made(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    items = [1, 2]
    counts = {"a": 1}
    async with sim_lab(impl, faults=LinkFaults(delay=0.5)) as (_, _, client):
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lab.containers, items, frozenset({Color.RED}), counts, {})
            await trio.sleep(0.1)  # the call is on the (slow) wire, not yet at the server
            assert impl.seen == []
            items.append(3)
            counts["b"] = 2
    assert impl.seen == [([1, 2], frozenset({Color.RED}), {"a": 1}, {})]


async def test_server_busy_when_slots_and_queue_are_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    errors: list[rpc.RpcError] = []

    async def sleeper(lab: LabClient) -> None:
        try:
            await lab.sleep(1.0)
        except rpc.RpcError as exc:
            errors.append(exc)

    async with sim_lab(impl, max_concurrent=1, max_queued=1) as (_, server, client):
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(sleeper, lab)
                await trio.sleep(0.01)
        stats = server.statistics()
    assert len(errors) == 1
    assert isinstance(errors[0], rpc.ServerBusy)
    assert errors[0].outcome is CallOutcome.NOT_EXECUTED
    assert impl.sleep_finished == 2
    assert stats.calls_failed["SERVER_BUSY"] == 1


async def test_graceful_shutdown_finishes_in_flight_calls_and_refuses_new_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    net = SimNetwork(5)
    finished: list[str] = []

    async def slow_call(lab: LabClient) -> None:
        await lab.sleep(3.0)
        finished.append("slow")

    server = rpc.Server([impl], socket=net.socket(SERVER_ADDR))
    async with trio.open_nursery() as outer:
        await outer.start(server.serve)
        async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
            lab = LabClient(client)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_call, lab)
                await impl.sleep_started.wait()
                nursery.start_soon(server.shutdown, 10.0)
                await trio.sleep(0.1)
                with pytest.raises(rpc.ShuttingDown) as info:
                    await lab.divide(1, 1)
    assert finished == ["slow"]
    assert info.value.outcome is CallOutcome.NOT_EXECUTED
    assert impl.sleep_finished == 1


async def test_graceful_shutdown_ends_client_sessions_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(9)
    server = rpc.Server([LabImpl()], socket=net.socket(SERVER_ADDR))
    async with trio.open_nursery() as outer:
        await outer.start(server.serve)
        async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
            assert await LabClient(client).divide(4, 2) == 2.0
            await server.shutdown(grace=1.0)
            # The server's CLOSE arrives within a network delay, long before any liveness
            # timeout could have told the client that the server is gone.
            await trio.sleep(0.05)
            transport = client.statistics().transport
    assert server.statistics().transport.closes_sent >= 1
    assert transport.peers_closed == 1
    assert transport.peers_unreachable == 0


async def test_several_versions_and_the_async_context_manager(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(6)
    async with rpc.Server([LabImpl(), LabV1Impl()], socket=net.socket(SERVER_ADDR)) as server:
        assert server.address == SERVER_ADDR
        async with rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
            assert await LabClient(client).shape(Shape(point=Point(x=1))) == Shape(radius=1.0)


async def test_statistics_count_calls_by_kind(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_lab() as (_, server, client):
        lab = LabClient(client)
        await lab.bump("x")
        with pytest.raises(rpc.RemoteError):
            await lab.crash("x")
        client_stats = client.statistics()
        server_stats = server.statistics()
    assert (client_stats.calls_started, client_stats.calls_succeeded) == (2, 1)
    assert client_stats.calls_failed == {"RemoteError": 1}
    assert client_stats.in_flight == 0
    assert server_stats.calls_received == 2
    assert server_stats.calls_completed == 1
    assert server_stats.reply_cache.entries >= 0
    assert server_stats.transport is not None


async def test_blocking_code_runs_in_a_thread(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_lab() as (_, _, client):
        assert await LabClient(client).blocking_sum([1, 2, 3]) == 6


async def test_server_rejects_bad_configuration() -> None:
    with pytest.raises(rpc.InvalidArgument):
        rpc.Server([LabImpl(), LabImpl()])
    with pytest.raises(rpc.InvalidArgument):
        rpc.Server([LabImpl()], max_concurrent=0)


async def test_shutdown_of_idle_server_stops_serving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(8)
    async with sim_server(net, [LabImpl()]) as server:
        await server.shutdown(grace=0.5)
        assert server.statistics().in_flight == 0


async def test_queued_call_that_is_cancelled_or_expires_never_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl, max_concurrent=1) as (_, server, client):
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lab.sleep, 5.0)
            await impl.sleep_started.wait()
            with trio.move_on_after(1.0):  # queued behind the sleeper, then cancelled
                await lab.bump("cancelled")
            with pytest.raises(rpc.DeadlineExceeded):
                await lab.bump("expired", timeout=1.0)
        await trio.sleep(0.5)
        stats = server.statistics()
    assert impl.counters == {}
    # The expired call's CANCEL and its server-side deadline race; either ends it unrun.
    assert stats.calls_failed.get("CANCELLED", 0) + stats.calls_failed.get("DEADLINE", 0) == 2


async def test_restarted_client_gets_its_old_handlers_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    net = SimNetwork(9)
    client_addr = ("10.0.0.9", 4000)
    async with sim_server(net, [impl]):
        async with rpc.connect(*SERVER_ADDR, socket=net.socket(client_addr)) as old:
            old._table.abandon = lambda pending: None  # type: ignore[method-assign]  # no CANCEL
            with trio.move_on_after(1.0):
                await LabClient(old).sleep(1000.0)  # leaves a handler running on the server
        assert impl.sleeping == 1  # the old client vanished without a word
        async with rpc.connect(*SERVER_ADDR, socket=net.socket(client_addr)) as new:
            assert await LabClient(new).bump("k") == 1
            await trio.sleep(0.1)
    assert impl.sleep_cancelled == 1
    assert impl.sleep_finished == 0


async def test_malformed_messages_are_counted_and_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, server, client):
        client._driver.send_message(SERVER_ADDR, b"\xc1garbage")
        client._driver.send_message(SERVER_ADDR, b"\x92\x07\x01")  # unknown kind 7
        await trio.sleep(0.1)
        assert await client.ping() >= 0.0
        assert server.statistics().malformed_messages == 2


async def test_send_backpressure_waits_for_capacity(autojump_clock: trio.testing.MockClock) -> None:
    config = rpc.transport.TransportConfig(send_buffer_size=64 * 1024, max_datagram_size=1200)
    raw = bytes(range(256)) * 200  # 51,200 incompressible-ish bytes: two cannot be buffered
    net = SimNetwork(10, faults=LinkFaults(delay=0.05))
    results: list[list[str]] = []

    async def upload(lab: LabClient) -> None:
        results.append(await lab.texts("n", b"", "", raw, timeout=30.0))

    async with sim_server(net, [LabImpl()]), rpc.connect(
        *SERVER_ADDR, socket=net.socket(), config=config
    ) as client:
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(upload, lab)
    assert len(results) == 3
    assert all(r[3] == raw.hex() for r in results)


async def test_worker_reused_after_cancellations_keeps_serving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl, max_concurrent=1) as (_, server, client):
        lab = LabClient(client)
        for round_ in range(3):
            with pytest.raises(rpc.DeadlineExceeded):
                await lab.sleep(10.0, timeout=0.5)
            assert await lab.bump("n") == round_ + 1
            await lab.sleep(0.2, timeout=5.0)  # a deadline that does not fire
        stats = server.statistics()
    assert impl.sleep_cancelled == 3
    assert impl.sleep_finished == 3
    assert stats.calls_failed["DEADLINE"] == 3


async def test_handler_can_cancel_its_own_call_and_a_stale_context_is_harmless(
    autojump_clock: trio.testing.MockClock,
) -> None:
    contexts: list[rpc.CallContext] = []

    class SelfCancelling(LabImpl):
        async def whoami(self) -> str:
            call = rpc.current_call()
            assert call is not None
            contexts.append(call)
            if len(contexts) == 1:
                call.cancel()
                assert call.cancelled
                await trio.sleep(1.0)  # cancelled here: no reply is sent
            return "second"

    async with sim_lab(SelfCancelling(), max_concurrent=1) as (_, _, client):
        lab = LabClient(client)
        with pytest.raises(rpc.DeadlineExceeded):
            await lab.whoami(timeout=2.0)
        contexts[0].cancel()  # long finished: must not touch the next call on that worker
        assert await lab.whoami(timeout=2.0) == "second"
    assert not contexts[1].cancelled
    assert rpc.current_call() is None


async def test_a_handler_run_inline_that_cancels_its_call_sends_no_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # whoami has no await here, so it runs inline in the server's reader task; cancelling
    # its own call must mean what it means for a handler in a worker: no reply, CANCELLED.
    class SelfCancellingInline(LabImpl):
        async def whoami(self) -> str:
            call = rpc.current_call()
            assert call is not None
            if call.call_number % 2:
                call.cancel()
            return "answered"

    async with sim_lab(SelfCancellingInline()) as (_, server, client):
        lab = LabClient(client)
        answered = failed = 0
        for _ in range(4):
            try:
                assert await lab.whoami(timeout=1.0) == "answered"
                answered += 1
            except rpc.DeadlineExceeded:
                failed += 1
        stats = server.statistics()
    assert (answered, failed) == (2, 2)
    assert stats.calls_failed["CANCELLED"] == 2
    assert stats.calls_completed == 2


@pytest.mark.realnet
async def test_serve_reports_the_bound_address_and_address_needs_a_socket() -> None:
    server = rpc.Server([LabImpl()], port=0)
    with pytest.raises(rpc.RpcError):
        _ = server.address
    async with trio.open_nursery() as nursery:
        address = await nursery.start(server.serve)
        assert address == server.address
        assert address[0] == "127.0.0.1"
        assert address[1] > 0
        await server.shutdown(grace=0.1)
    await server.shutdown(grace=10.0)  # already stopped: returns at once


async def test_first_cached_call_learns_the_server_epoch_with_one_ping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, server, client):
        lab = LabClient(client)
        assert await lab.bump("k") == 1
        assert await lab.bump("k") == 2
        assert server.statistics().pings == 1
        assert client._table.server_epoch == server.epoch


async def test_any_reply_teaches_the_epoch_so_no_ping_is_needed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, server, client):
        lab = LabClient(client)
        await lab.sleep(0.0)  # idempotent: sent without a handshake; its reply has the epoch
        assert await lab.bump("k") == 1
        assert server.statistics().pings == 0


async def test_library_logs_restarts_and_shutdown_at_info(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rpc")
    async with sim_lab() as (_, server, client):
        await LabClient(client).bump("k")
        await server.shutdown(grace=1.0)
    assert any("shutting down" in r.getMessage() for r in caplog.records)
    assert all(r.name.startswith("rpc.") for r in caplog.records)


async def test_a_refused_oneway_call_is_reported_to_its_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = HeldBump()
    async with sim_lab(impl, max_concurrent=1, max_queued=0) as (_, server, client):
        lab = LabClient(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lab.bump, "k")
            await impl.entered.wait()  # the only handler slot is taken
            with pytest.raises(rpc.ServerBusy) as info:
                await lab.record("refused")
            impl.release.set()
        await lab.record("accepted")  # a slot is free again: no refusal, no error
        for _ in range(100):
            if impl.records:
                break
            await trio.sleep(0.001)
        stats = server.statistics()
    assert info.value.outcome is CallOutcome.NOT_EXECUTED
    assert impl.records == ["accepted"]
    assert stats.calls_failed.get("SERVER_BUSY") == 1
    assert client.statistics().in_flight == 0


async def test_an_idle_client_still_acknowledges_its_last_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A leading caller leaves the flush after its reply (and the ACK bookkeeping) for later:
    # with no next call to carry the ACK, the driver must still send it in time, or the
    # server would resend the reply.
    net = SimNetwork(21, faults=LinkFaults(delay=0.002))
    async with (
        sim_server(net, [LabImpl()]) as server,
        rpc.connect(*SERVER_ADDR, socket=net.socket()) as client,
    ):
        lab = LabClient(client)
        assert [await lab.bump("k") for _ in range(3)] == [1, 2, 3]
        await trio.sleep(2.0)  # idle with the session open
        transport = server.statistics().transport
        assert transport.messages_sent >= 3
        assert transport.messages_acked == transport.messages_sent  # the last reply too
        assert transport.retransmissions == 0
        assert client.statistics().transport.retransmissions == 0


async def test_oneway_returns_when_its_ack_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Its result comes from the ACK alone, which a leading caller applies just before it
    # would wait again: it must then return, not wait for more input.
    impl = LabImpl()
    async with sim_lab(impl) as (_, _server, client):
        lab = LabClient(client)
        await lab.bump("warm-up")  # the handshake is done: the next call leads at once
        for _ in range(3):
            started = trio.current_time()
            await lab.record("hello", timeout=30.0)
            assert trio.current_time() - started < 0.1  # the ack delay, not the timeout
    assert impl.records == ["hello"] * 3
