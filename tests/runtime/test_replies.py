"""Client-side interpretation of replies: every status maps to its error and outcome."""

from __future__ import annotations

import pytest

import rpc
from rpc.calls._call_table import CallTable
from rpc.calls._replies import error_of_reply, result_of_reply
from rpc.calls.callproto import Status
from rpc.errors import CallOutcome
from rpc.transport.events import MessageAcked
from tests.runtime.lab_service import LAB_V2, DivideByZero

DIVIDE = LAB_V2.methods[7]
ARGS = DIVIDE.encode_args((1, 1))


@pytest.mark.parametrize(
    ("status", "body", "error", "outcome"),
    [
        (Status.REMOTE_ERROR, ["KeyError", "k"], rpc.RemoteError, CallOutcome.EXECUTED),
        (Status.UNKNOWN_SERVICE, "no", rpc.UnknownService, CallOutcome.NOT_EXECUTED),
        (Status.UNKNOWN_METHOD, "no", rpc.UnknownMethod, CallOutcome.NOT_EXECUTED),
        (Status.VERSION_MISMATCH, [1, 3], rpc.VersionMismatch, CallOutcome.NOT_EXECUTED),
        (Status.INVALID_ARGUMENT, "bad", rpc.InvalidArgument, CallOutcome.NOT_EXECUTED),
        (Status.SERVER_BUSY, "busy", rpc.ServerBusy, CallOutcome.NOT_EXECUTED),
        (Status.SHUTTING_DOWN, "bye", rpc.ShuttingDown, CallOutcome.NOT_EXECUTED),
        (Status.WRONG_EPOCH, "old", rpc.ServerRestarted, CallOutcome.NOT_EXECUTED),
        (Status.INVALID_RESULT, "bad", rpc.InvalidArgument, CallOutcome.EXECUTED),
        (Status.APPLICATION_ERROR, [1, {1: 5}], DivideByZero, CallOutcome.EXECUTED),
    ],
)
def test_status_maps_to_error_and_outcome(
    status: Status, body: object, error: type[rpc.RpcError], outcome: CallOutcome
) -> None:
    exc = error_of_reply(LAB_V2, DIVIDE, status, body)
    assert type(exc) is error
    assert exc.outcome is outcome


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (Status.OK, "not a float"),
        (Status.APPLICATION_ERROR, [9, {}]),  # undeclared exception number
        (Status.APPLICATION_ERROR, "junk"),
        (Status.REMOTE_ERROR, [1, 2]),
        (Status.VERSION_MISMATCH, ["a", "b"]),
    ],
)
def test_malformed_replies_are_protocol_errors(status: Status, body: object) -> None:
    with pytest.raises(rpc.ProtocolError):
        result_of_reply(LAB_V2, DIVIDE, status, body)


def test_ok_reply_decodes_the_result() -> None:
    assert result_of_reply(LAB_V2, DIVIDE, Status.OK, 2.5) == 2.5


def test_handshake_is_needed_only_for_cached_calls_until_the_epoch_is_known() -> None:
    table = CallTable()
    sleep = LAB_V2.methods[9]
    assert sleep.idempotent
    assert not table.needs_handshake(sleep)
    assert table.needs_handshake(DIVIDE)
    table.server_epoch = 77
    assert not table.needs_handshake(DIVIDE)


def test_floor_is_the_oldest_undelivered_cached_call() -> None:
    table = CallTable()
    first, _ = table.build_call(LAB_V2, DIVIDE, ARGS, None)
    second, _ = table.build_call(LAB_V2, DIVIDE, ARGS, None)
    table.sent(first, 10)
    table.sent(second, 11)
    third_payload = table.build_call(LAB_V2, DIVIDE, ARGS, None)[1]
    assert rpc.calls.callproto.decode_call_untrusted(
        rpc.calls.callproto.unpack_untrusted(third_payload)
    ).floor == 1
    table.handle_event(MessageAcked(("h", 1), 10))
    fourth_payload = table.build_call(LAB_V2, DIVIDE, ARGS, None)[1]
    assert rpc.calls.callproto.decode_call_untrusted(
        rpc.calls.callproto.unpack_untrusted(fourth_payload)
    ).floor == 2
    assert table.abandon(second) is not None  # sent and unanswered: tell the server
    assert table.abandon(second) is None  # only once
    assert table.statistics(transport=None).cancels_sent == 1  # type: ignore[arg-type]
