"""Every failure reaches the caller as the right RpcError with the right outcome."""

from __future__ import annotations

import logging

import pytest
import trio

import rpc
from rpc.calls import schema
from rpc.errors import CallOutcome
from rpc.testing import LinkFaults, SimNetwork
from tests.runtime import lab_service
from tests.runtime.harness import SERVER_ADDR, LabImpl, sim_lab, sim_server
from tests.runtime.lab_service import DivideByZero, LabClient, LabV1Client


async def test_declared_exception_arrives_as_its_class_with_fields(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, _, client):
        with pytest.raises(DivideByZero) as info:
            await LabClient(client).divide(7, 0)
    assert info.value.dividend == 7
    assert info.value.outcome is CallOutcome.EXECUTED


async def test_unexpected_handler_error_is_remote_error_without_traceback(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rpc")
    async with sim_lab() as (_, server, client):
        with pytest.raises(rpc.RemoteError) as info:
            await LabClient(client).crash("boom")
        assert server.statistics().calls_failed["REMOTE_ERROR"] == 1
    assert info.value.type_name == "KeyError"
    assert info.value.remote_message == "'boom'"
    assert "Traceback" not in str(info.value)
    assert info.value.outcome is CallOutcome.EXECUTED
    assert any("crash" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_unknown_service_and_method(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_lab() as (_, _, client):
        with pytest.raises(rpc.UnknownService) as service_info:
            await client.call(lab_service.NOPE_V1, lab_service.MISSING_METHOD, ())
        with pytest.raises(rpc.UnknownMethod) as method_info:
            await client.call(lab_service.LAB_V2, lab_service.MISSING_METHOD, ())
    assert "Nope" in service_info.value.message
    assert service_info.value.outcome is CallOutcome.NOT_EXECUTED
    assert method_info.value.outcome is CallOutcome.NOT_EXECUTED


async def test_version_mismatch_reports_the_served_range(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, _, client):
        assert await LabV1Client(client).legacy() == "v1"  # both versions on one socket
        with pytest.raises(rpc.VersionMismatch) as info:
            await client.call(lab_service.LAB_V3, lab_service.LAB_V3.methods[0], ())
    assert (info.value.low, info.value.high) == (1, 2)
    assert info.value.outcome is CallOutcome.NOT_EXECUTED


async def test_client_side_validation_names_method_argument_and_problem(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, server, client):
        lab = LabClient(client)
        with pytest.raises(rpc.InvalidArgument) as info:
            await lab.texts("far too long a name", b"", "", b"")
        with pytest.raises(rpc.InvalidArgument) as range_info:
            await lab.divide(2**31, 1)
        assert server.statistics().calls_received == 0
    assert info.value.outcome is CallOutcome.NOT_DELIVERED
    assert "Lab.texts(name)" in info.value.message
    assert "8" in info.value.message
    assert "divide(a)" in range_info.value.message


async def test_server_side_validation_rejects_before_the_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A buggy client whose idea of divide() has unbounded integers.
    lax = rpc.MethodSpec[float](
        name="divide", number=8,
        params=(rpc.Param(1, "a", schema.I64), rpc.Param(2, "b", schema.I64)),
        result=schema.F64,
    )
    impl = LabImpl()
    async with sim_lab(impl) as (_, _, client):
        with pytest.raises(rpc.InvalidArgument) as info:
            await client.call(lab_service.LAB_V2, lax, (2**40, 1))
    assert info.value.outcome is CallOutcome.NOT_EXECUTED
    assert "divide(a)" in info.value.message


async def test_invalid_result_is_reported_as_executed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Wrong(LabImpl):
        async def maybe(self, x: int | None) -> str:
            return x  # type: ignore[return-value]  # deliberately the wrong type

    async with sim_lab(Wrong()) as (_, _, client):
        with pytest.raises(rpc.InvalidArgument) as info:
            await LabClient(client).maybe(3)
    assert info.value.outcome is CallOutcome.EXECUTED


async def test_calls_after_close_raise_client_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, _, client):
        client.close()
        with pytest.raises(rpc.ClientClosed) as info:
            await LabClient(client).divide(1, 1)
    assert info.value.outcome is CallOutcome.NOT_DELIVERED


async def test_unreachable_server_fails_the_handshake_so_the_call_was_not_delivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A cached call first pings for the server's epoch; with no answer the CALL is never sent.
    net = SimNetwork(3)
    async with rpc.connect("10.9.9.9", 9, socket=net.socket()) as client:
        with pytest.raises(rpc.PeerUnreachable) as info:
            await LabClient(client).divide(1, 1)
        stats = client.statistics()
    assert info.value.outcome is CallOutcome.NOT_DELIVERED
    assert stats.calls_failed == {"PeerUnreachable": 1}


async def test_unreachable_server_after_sending_gives_unknown_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # An idempotent call needs no handshake: it is sent, and nothing comes back.
    net = SimNetwork(4)
    async with rpc.connect("10.9.9.9", 9, socket=net.socket()) as client:
        with pytest.raises(rpc.PeerUnreachable) as info:
            await LabClient(client).sleep(0.1)
    assert info.value.outcome is CallOutcome.UNKNOWN


async def test_one_way_partition_runs_the_call_and_says_outcome_unknown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with sim_lab(impl) as (net, _, client):
        lab = LabClient(client)
        assert await lab.bump("k") == 1
        net.set_faults(SERVER_ADDR, None, LinkFaults(loss=1.0))  # replies and acks vanish
        with pytest.raises(rpc.PeerUnreachable) as info:
            await lab.bump("k")
        net.set_faults(SERVER_ADDR, None, LinkFaults())
    assert impl.counters["k"] == 2  # it did run
    assert info.value.outcome is CallOutcome.UNKNOWN
    assert not info.value.safe_to_retry


async def test_closing_the_client_fails_calls_in_flight_with_unknown_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    errors: list[rpc.RpcError] = []

    async def sleeper(lab: LabClient) -> None:
        try:
            await lab.sleep(100.0)
        except rpc.ClientClosed as exc:
            errors.append(exc)

    async with sim_lab(impl) as (_, _, client), trio.open_nursery() as nursery:
        nursery.start_soon(sleeper, LabClient(client))
        await impl.sleep_started.wait()
        client.close()
    assert len(errors) == 1
    assert errors[0].outcome is CallOutcome.UNKNOWN


async def test_too_large_argument_is_not_delivered(autojump_clock: trio.testing.MockClock) -> None:
    config = rpc.transport.config.TransportConfig(max_message_size=4096)
    net = SimNetwork(5)
    async with sim_server(net, [LabImpl()]), rpc.connect(
        *SERVER_ADDR, socket=net.socket(), config=config
    ) as client:
        lab = LabClient(client)
        await lab.sleep(0.0)  # learn the epoch
        with pytest.raises(rpc.MessageTooLarge) as info:
            await lab.texts("n", b"", "", bytes(10_000))
        assert await lab.texts("n", b"", "", b"\x01") == ["n", "", "", "01"]
    assert info.value.outcome is CallOutcome.NOT_DELIVERED
