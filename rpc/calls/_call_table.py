"""The client side of the RPC layer without any I/O: the table of outstanding calls.

Both clients (:mod:`rpc.client` on trio, :mod:`rpc.sync` on a blocking socket) keep their calls
here. The table numbers calls, builds their ``CALL`` envelopes, computes the ``floor`` that lets
the server release its reply cache, and turns transport events into call results. A finished
call's result (its reply, or the error that ended it) is stored on its :class:`PendingCall` and
its ``wake`` callback (if any) is called, synchronously, from the event handler: that is the one
task hop.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

from rpc.calls import callproto
from rpc.calls._pending import (
    ACKED,
    CallResult,
    ClientStatistics,
    PendingCall,
    budget_ms,
    deadline_exceeded,
    invalid_argument,
    outcome_once_sent,
    probe_interval,
    reply_of,
)
from rpc.calls._replies import result_of_reply
from rpc.calls.callproto import Status
from rpc.calls.schema import ValidationError
from rpc.calls.service import MethodSpec, ServiceSpec
from rpc.errors import (
    CallOutcome,
    ClientClosed,
    PeerUnreachable,
    ProtocolError,
    RpcError,
    ServerRestarted,
    ShuttingDown,
)
from rpc.transport import events
from rpc.transport.stats import EndpointStatistics

logger = logging.getLogger("rpc.client")

def _nothing() -> None:
    pass


class CallTable:
    """Outstanding calls of one client session to one server."""

    def __init__(self) -> None:
        self._next_call_no = 1
        self._calls: dict[int, PendingCall] = {}
        #: Cached (non-idempotent) calls whose CALL message the transport has not confirmed,
        #: in call-number order: the smallest is the floor sent to the server.
        self._undelivered: dict[int, None] = {}
        self._by_message: dict[int, int] = {}  # transport message id -> call number
        #: The server instance we talk to; calls carry it so a restarted server refuses them.
        self.server_epoch = callproto.EPOCH_UNKNOWN
        self.closed = False
        self.started = 0
        self.succeeded = 0
        self.failed: collections.Counter[str] = collections.Counter()
        self.cancels = 0
        self.probes = 0
        self.retries = 0
        #: Called when the transport has room again after ``SendBufferFull``.
        self.on_capacity: Callable[[], None] = _nothing
        #: The events other than replies and acks (see :meth:`handle_event`).
        self._on_event: dict[type, Callable[[Any], None]] = {
            events.PeerUnreachable: self.on_unreachable,
            events.PeerRestarted: self.on_restarted,
            events.PeerClosed: self.on_closed,
            events.SendCapacityAvailable: lambda _: self.on_capacity(),
        }

    def handle_event(self, event: events.TransportEvent) -> None:
        """Apply one transport event (the client talks to one server: addresses are moot).

        Every call passes here twice (its reply, and the ack of its ``CALL``), so those two
        are handled inline; the rare events go through ``_on_event``.
        """
        if type(event) is events.MessageReceived:
            # A message from the server: resolve the call it answers.
            if self.server_epoch == callproto.EPOCH_UNKNOWN:
                self.server_epoch = event.peer_epoch
            try:
                reply = callproto.decode_reply_payload_untrusted(event.payload)
            except ProtocolError:
                return  # a malformed message names no call we could fail
            if reply is None:
                return  # clients receive only replies; anything else is ignored
            call_no, status, body = reply
            pending = self._calls.pop(call_no, None)
            if pending is None:
                return
            if pending.result is not None:  # an acked oneway call: the server refused it
                pending.refusal = (status, body)
                return
            pending.delivered = True
            pending.result = (status, body)
            wake = pending.wake
            if wake is not None:
                pending.wake = None
                wake()
        elif type(event) is events.MessageAcked:
            # The transport confirmed delivery of one of our messages.
            acked_no = self._by_message.pop(event.message_id, None)
            if acked_no is None:
                return
            self._undelivered.pop(acked_no, None)
            pending = self._calls.get(acked_no)
            if pending is None:
                return
            pending.delivered = True
            if pending.oneway:
                # Done, but it stays in the table until its caller resumes (settle_oneway):
                # a refusal carried by the same datagram as the ack is still reported.
                self._resolve(pending, ACKED)
        else:
            self._on_event[type(event)](event)

    @property
    def in_flight(self) -> int:
        """Calls waiting for their result."""
        return len(self._calls)

    def next_call_no(self) -> int:
        """Take a fresh call number."""
        call_no = self._next_call_no
        self._next_call_no = call_no + 1
        return call_no

    def encode_args(
        self, service: ServiceSpec, method: MethodSpec[Any], args: tuple[object, ...]
    ) -> object:
        """Validate and encode the arguments now (marshal by value).

        Raises ``InvalidArgument`` (not delivered) naming the method, argument and problem.
        """
        if self.closed:
            raise ClientClosed("the client is closed")
        try:
            return method.encode_args(args)
        except ValidationError as exc:
            raise invalid_argument(service, exc) from None

    def needs_handshake(self, method: MethodSpec[Any]) -> bool:
        """True when a ping must first learn the server's epoch (see ``docs/rpc-layer.md``).

        A cached call sent before the client knows which server instance it talks to could be
        run by that instance and again by a successor that receives a retransmission; with
        the epoch in the envelope the successor refuses it.
        """
        return not method.idempotent and self.server_epoch == callproto.EPOCH_UNKNOWN

    def build_call(
        self,
        service: ServiceSpec,
        method: MethodSpec[Any],
        wire_args: object,
        timeout: float | None,
    ) -> tuple[PendingCall, bytes]:
        """Number a call, build its envelope and register it as outstanding."""
        if self.closed:
            raise ClientClosed("the client is closed")
        call_no = self._next_call_no
        self._next_call_no = call_no + 1
        flags = 0
        if method.oneway:
            flags = callproto.FLAG_ONEWAY
        if method.idempotent:
            flags |= callproto.FLAG_IDEMPOTENT
        else:
            self._undelivered[call_no] = None
        # The oldest undelivered call (dicts keep insertion order); a loop costs less than
        # next(iter(...)).
        floor = call_no
        for floor in self._undelivered:  # noqa: B007  (the first key is the floor)
            break
        payload = callproto.encode_call(
            call_no,
            service.name,
            service.version,
            method.number,
            None if timeout is None else budget_ms(timeout),
            flags,
            floor,
            self.server_epoch,
            wire_args,
        )
        pending = PendingCall(call_no, method.oneway)
        self._calls[call_no] = pending
        return pending, payload

    def build_ping(self) -> tuple[PendingCall, bytes]:
        """Register a ping (the null procedure) and encode it."""
        if self.closed:
            raise ClientClosed("the client is closed")
        pending = PendingCall(self.next_call_no(), oneway=False)
        self._calls[pending.call_no] = pending
        return pending, callproto.encode_ping(pending.call_no)

    def sent(self, pending: PendingCall, message_id: int) -> None:
        """The transport accepted the call's message under ``message_id``."""
        pending.sent = True
        self._by_message[message_id] = pending.call_no

    def settle_oneway(self, pending: PendingCall) -> tuple[Status, object] | None:
        """Retire an acknowledged oneway call; returns its refusal if one came with the ack.

        A server refuses a call (busy, shutting down, unknown method...) as it arrives, so the
        refusal normally travels in the datagram that acknowledges the CALL, and its events
        are handled before the caller resumes. A refusal arriving later is not reported.
        """
        self._calls.pop(pending.call_no, None)
        return pending.refusal

    def finish(
        self,
        service: ServiceSpec,
        method: MethodSpec[Any],
        pending: PendingCall,
        reply: tuple[Status, object] | None,
    ) -> Any:
        """The call's result from its round trip's ``reply``; raises the matching ``RpcError``.

        ``None`` means an acknowledged oneway call: it is retired, and its refusal, if one came
        with the ack, raises. Both clients end a call here, so they decode alike.
        """
        if reply is None:
            reply = self.settle_oneway(pending)
            if reply is None:
                return None  # oneway methods are void
        status, body = reply
        if status is Status.OK and type(body) is method.result_plain:
            return body  # valid as it is (a bytes result): no decoder call
        return result_of_reply(service, method, status, body)

    def abandon(self, pending: PendingCall) -> bytes | None:
        """The caller stopped waiting; returns the ``CANCEL`` to send, if the server should know.

        The call also leaves the floor computation: the server treats it as stale if it
        arrives after a later call, so an abandoned call is less likely to run late.
        """
        self._undelivered.pop(pending.call_no, None)
        still_waiting = self._calls.pop(pending.call_no, None) is not None
        if not (still_waiting and pending.sent and not pending.oneway and pending.result is None):
            return None
        self.cancels += 1
        return callproto.encode_cancel(pending.call_no)

    def statistics(self, transport: EndpointStatistics) -> ClientStatistics:
        """A snapshot of the client's counters."""
        return ClientStatistics(
            calls_started=self.started,
            calls_succeeded=self.succeeded,
            calls_failed=dict(self.failed),
            in_flight=len(self._calls),
            cancels_sent=self.cancels,
            transport=transport,
            retries=self.retries,
            probes_sent=self.probes,
        )

    # -- transport events -------------------------------------------------------------------

    def calls_to_probe(self) -> list[int]:
        """Call numbers to name in a ``PROBE`` now (one tick of the client's probe timer).

        A call is probed once it has been outstanding across two ticks (so it waited at least
        one probe interval), has been delivered (until then the transport's retransmissions
        and liveness timeout cover it) and expects a reply. Oldest first, at most
        ``callproto.MAX_PROBED_CALLS``: the others are probed at later ticks, and while any
        probe is unacknowledged the transport's liveness timeout runs anyway.
        """
        due: list[int] = []
        for pending in self._calls.values():
            if pending.aged:
                if pending.delivered and not pending.oneway and pending.result is None:
                    due.append(pending.call_no)
            else:
                pending.aged = True
        return due[: callproto.MAX_PROBED_CALLS]

    def on_unreachable(self, event: events.PeerUnreachable) -> None:
        """The transport gave up on the server: every outstanding call fails.

        When the network refused our datagrams (ICMP port unreachable) before we ever heard
        from the server, nothing listened there: no call was delivered.
        """
        if event.refused:  # whoever listens there next is a new incarnation: learn its epoch
            self.server_epoch = callproto.EPOCH_UNKNOWN
        by_message = self._by_message
        unseen = {by_message[m] for m in event.unseen_message_ids if m in by_message}
        what = "is not listening (port unreachable)" if event.refused else "stopped answering"
        self._lose_server(event.addr, what, event.refused and event.never_heard, unseen)

    def on_closed(self, event: events.PeerClosed) -> None:
        """The server closed our session (it shut down): every outstanding call fails.

        A drained close promises that every call the server ran was answered and the answer
        acknowledged: what is still outstanding did not run (it never arrived, or its refusal
        is still on its way), so it is ``ShuttingDown``, ``NOT_EXECUTED``, safe to retry on a
        successor. The next call learns the new server's epoch first, as on a first contact.
        """
        self.server_epoch = callproto.EPOCH_UNKNOWN
        if not event.drained:
            self._lose_server(event.addr, "closed the session", False)
            return
        logger.info("server %s shut down: failing %d calls it never received",
                    event.addr, len(self._calls))
        self._by_message.clear()
        self._undelivered.clear()
        def error(pending: PendingCall) -> RpcError:
            if pending.oneway and pending.sent:
                # Its ACK, not an answer, tells a oneway call it arrived, and nothing makes the
                # server wait for that ACK to arrive before it closes: it may have run.
                return ShuttingDown("the server shut down", outcome=CallOutcome.UNKNOWN)
            return ShuttingDown(
                "the server shut down without running the call", outcome=CallOutcome.NOT_EXECUTED
            )

        self.fail_all(error)

    def _lose_server(
        self,
        addr: events.Address,
        what: str,
        nothing_listened: bool,
        unseen: set[int] | frozenset[int] = frozenset(),
    ) -> None:
        """Fail every call; those in ``unseen`` (call numbers) or all, if ``nothing_listened``,
        certainly never reached the server."""
        logger.info("server %s %s: failing %d outstanding calls", addr, what, len(self._calls))
        self._by_message.clear()
        self._undelivered.clear()  # nothing will be retransmitted any more

        def error(pending: PendingCall) -> RpcError:
            if nothing_listened or pending.call_no in unseen:
                outcome = CallOutcome.NOT_DELIVERED
            else:
                outcome = outcome_once_sent(pending)
            return PeerUnreachable(f"the server {what}", outcome=outcome)

        self.fail_all(error)

    def on_restarted(self, event: events.PeerRestarted) -> None:
        """The server restarted: calls outstanding across the restart fail.

        A call the old incarnation can never have seen (the transport says which) was not
        executed by it, and the new one refuses calls meant for its predecessor: such a call
        is ``NOT_EXECUTED``, safe to retry. Only the others may have run (``UNKNOWN``).
        """
        logger.info("server %s restarted: failing %d outstanding calls",
                    event.addr, len(self._calls))
        self.server_epoch = event.new_epoch
        by_message = self._by_message
        unseen = {by_message[m] for m in event.unseen_message_ids if m in by_message}
        self._undelivered.clear()
        by_message.clear()

        def error(pending: PendingCall) -> RpcError:
            if pending.call_no in unseen or not pending.sent:
                return ServerRestarted(
                    "the server restarted before the call reached it",
                    outcome=CallOutcome.NOT_EXECUTED,
                )
            return ServerRestarted(
                "the server restarted while the call was outstanding",
                outcome=CallOutcome.UNKNOWN,
            )

        self.fail_all(error)

    def close(self) -> None:
        """Refuse new calls and fail outstanding ones with ``ClientClosed``."""
        self.closed = True
        self.fail_all(
            lambda p: ClientClosed(
                "the client was closed during the call", outcome=outcome_once_sent(p)
            )
        )

    def fail_all(self, make_error: Callable[[PendingCall], RpcError]) -> None:
        """Fail every outstanding call with the error ``make_error`` builds for it."""
        calls = list(self._calls.values())
        self._calls.clear()
        for pending in calls:
            self._resolve(pending, make_error(pending))

    @staticmethod
    def _resolve(pending: PendingCall, result: CallResult) -> None:
        pending.result = result
        wake = pending.wake
        if wake is not None:
            pending.wake = None
            wake()


__all__ = [
    "ACKED",
    "CallTable",
    "ClientStatistics",
    "PendingCall",
    "deadline_exceeded",
    "probe_interval",
    "reply_of",
]
