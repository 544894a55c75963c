"""The client's call table, without I/O: which calls it probes, and what it says about calls
that a lost, restarted or closed server leaves outstanding."""

from __future__ import annotations

import pytest

import rpc
from rpc.calls import callproto
from rpc.calls._call_table import CallTable, PendingCall, probe_interval
from rpc.transport import events
from tests.runtime.lab_service import LAB_V2

SERVER = ("10.0.0.1", 7000)
BUMP = next(m for m in LAB_V2.methods if m.name == "bump")
RECORD = next(m for m in LAB_V2.methods if m.name == "record")  # oneway


def started(table: CallTable, method: object = BUMP, message_id: int = 0) -> PendingCall:
    pending, _ = table.build_call(LAB_V2, method, {1: "k"}, 5.0)  # type: ignore[arg-type]
    table.sent(pending, message_id or pending.call_no + 100)
    return pending


def acked(table: CallTable, pending: PendingCall) -> None:
    table.handle_event(events.MessageAcked(SERVER, pending.call_no + 100))


def test_probe_interval_follows_peer_timeout() -> None:
    assert probe_interval(10.0) == 1.0
    assert probe_interval(2.0) == 0.5


def test_a_delivered_call_is_probed_from_its_second_tick() -> None:
    table = CallTable()
    waiting = started(table)
    unacked = started(table)
    oneway = started(table, RECORD)
    acked(table, waiting)
    assert table.calls_to_probe() == []  # first tick: they have not waited an interval yet
    assert table.calls_to_probe() == [waiting.call_no]  # unacked: retransmissions cover it
    late = started(table)
    acked(table, late)
    acked(table, unacked)
    assert table.calls_to_probe() == [waiting.call_no, unacked.call_no]
    assert table.calls_to_probe() == [waiting.call_no, unacked.call_no, late.call_no]
    assert oneway.oneway


def test_probing_is_bounded_per_message() -> None:
    table = CallTable()
    calls = [started(table) for _ in range(callproto.MAX_PROBED_CALLS + 10)]
    for pending in calls:
        acked(table, pending)
    table.calls_to_probe()
    due = table.calls_to_probe()
    assert due == [p.call_no for p in calls[: callproto.MAX_PROBED_CALLS]]  # oldest first
    payload = callproto.encode_probe(due)
    message = callproto.unpack_untrusted(payload)
    assert callproto.decode_probe_untrusted(message) == due


def test_a_drained_close_means_not_executed_and_a_new_handshake() -> None:
    table = CallTable()
    table.server_epoch = 0x51
    pending = started(table)
    acked(table, pending)
    table.handle_event(events.PeerClosed(SERVER, 0x51, True))
    assert isinstance(pending.result, rpc.ShuttingDown)
    assert pending.result.outcome is rpc.CallOutcome.NOT_EXECUTED
    assert table.server_epoch == callproto.EPOCH_UNKNOWN
    assert table.needs_handshake(BUMP)


def test_an_undrained_close_leaves_delivered_calls_unknown() -> None:
    table = CallTable()
    pending = started(table)
    acked(table, pending)
    table.handle_event(events.PeerClosed(SERVER, 0x51, False))
    assert isinstance(pending.result, rpc.PeerUnreachable)
    assert pending.result.outcome is rpc.CallOutcome.UNKNOWN


def test_a_restart_tells_unseen_calls_from_the_others() -> None:
    table = CallTable()
    table.server_epoch = 0x51
    maybe_ran = started(table)
    unseen = started(table)
    table.handle_event(events.PeerRestarted(SERVER, 0x51, 0x52, (unseen.call_no + 100,)))
    assert isinstance(maybe_ran.result, rpc.ServerRestarted)
    assert maybe_ran.result.outcome is rpc.CallOutcome.UNKNOWN
    assert isinstance(unseen.result, rpc.ServerRestarted)
    assert unseen.result.outcome is rpc.CallOutcome.NOT_EXECUTED
    assert table.server_epoch == 0x52


def test_refusals_say_not_delivered_only_where_proven() -> None:
    table = CallTable()
    table.server_epoch = 0x51
    before, after = started(table), started(table)
    refused = events.PeerUnreachable(SERVER, (), True, False, (after.call_no + 100,))
    table.handle_event(refused)
    assert isinstance(before.result, rpc.PeerUnreachable)
    assert before.result.outcome is rpc.CallOutcome.UNKNOWN
    assert isinstance(after.result, rpc.PeerUnreachable)
    assert after.result.outcome is rpc.CallOutcome.NOT_DELIVERED
    assert table.server_epoch == callproto.EPOCH_UNKNOWN  # whoever listens next is new

    fresh = CallTable()
    first = started(fresh)
    fresh.handle_event(events.PeerUnreachable(SERVER, (), True, True))
    assert isinstance(first.result, rpc.PeerUnreachable)
    assert first.result.outcome is rpc.CallOutcome.NOT_DELIVERED  # nothing ever listened


def test_silence_leaves_a_sent_call_unknown() -> None:
    table = CallTable()
    pending = started(table)  # never acknowledged: the acks may be what was lost
    table.handle_event(events.PeerUnreachable(SERVER, (), False, True))
    assert isinstance(pending.result, rpc.PeerUnreachable)
    assert pending.result.outcome is rpc.CallOutcome.UNKNOWN


def test_call_unknown_reply_is_call_lost() -> None:
    table = CallTable()
    pending = started(table)
    acked(table, pending)
    reply = callproto.encode_reply(pending.call_no, callproto.Status.CALL_UNKNOWN, "gone")
    table.handle_event(events.MessageReceived(SERVER, reply, 0x51))
    assert pending.result is not None
    with pytest.raises(rpc.CallLost) as raised:
        table.finish(LAB_V2, BUMP, pending, pending.result)  # type: ignore[arg-type]
    assert raised.value.outcome is rpc.CallOutcome.UNKNOWN


def test_a_oneway_call_outstanding_at_a_drained_close_may_have_run() -> None:
    table = CallTable()
    oneway = started(table, RECORD)  # sent; its ACK has not come back
    table.handle_event(events.PeerClosed(SERVER, 0x51, True))
    assert isinstance(oneway.result, rpc.ShuttingDown)
    assert oneway.result.outcome is rpc.CallOutcome.UNKNOWN  # nothing waited for its ACK
