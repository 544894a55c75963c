"""What a server does with each datagram's events, whatever its event loop: admission (epochs,
the service table, the at-most-once reply cache, refusals), probes, cancels, the drain, the
sessions' close, statistics.

:class:`ServerCore` is the base of the trio server (:mod:`rpc.server`) and the asyncio one
(:mod:`rpc.aio.server`). Each supplies its executor (how admitted calls run on its loop), its
driver and its life cycle (serve, shutdown); the rules live here once.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from rpc._execution import AdmittedCall, Executor
from rpc.calls import callproto
from rpc.calls._dispatch import ServiceTable
from rpc.calls.callproto import Status
from rpc.calls.reply_cache import (
    Admission,
    CacheEntry,
    ReplyCache,
    ReplyCacheStatistics,
    SessionKey,
)
from rpc.calls.schema import ValidationError
from rpc.calls.service import Handler
from rpc.errors import InvalidArgument, ProtocolError, SendBufferFull
from rpc.transport import events
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.stats import EndpointStatistics

logger = logging.getLogger("rpc.server")

Address = tuple[str, int]

#: Default limits; see the ``Server`` docstring.
DEFAULT_MAX_CONCURRENT = 256
DEFAULT_MAX_QUEUED = 1024
DEFAULT_SHUTDOWN_GRACE = 5.0


class ServingDriver(Protocol):
    """What the core needs of its driver (``TrioDriver``, ``AsyncioDriver``)."""

    #: The time of the input whose events are being handled (no clock read per call).
    input_time: float

    def send_message(self, addr: Address, payload: bytes) -> int:
        """Queue ``payload`` for ``addr`` and send what can go; its message id."""
        ...


@dataclasses.dataclass(frozen=True)
class ServerStatistics:
    """Counters of one server, with its reply cache's and its transport's."""

    calls_received: int
    calls_completed: int  # handler returned a result
    #: Calls that ended otherwise, by reply status name or by ``"CANCELLED"``/``"DEADLINE"``.
    calls_failed: Mapping[str, int]
    in_flight: int
    queued: int
    pings: int
    malformed_messages: int
    handler_seconds: float
    reply_cache: ReplyCacheStatistics
    transport: EndpointStatistics



class ServerCore(ABC):
    """The loop-independent part of a server; see the module docstring."""

    def __init__(
        self,
        handlers: Sequence[Handler],
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        max_queued: int = DEFAULT_MAX_QUEUED,
        config: TransportConfig | None = None,
        reply_cache: ReplyCache | None = None,
    ) -> None:
        if max_concurrent < 1 or max_queued < 0:
            raise InvalidArgument("max_concurrent must be >= 1 and max_queued >= 0")
        self._services = ServiceTable(handlers)
        self._plans = self._services.plans
        self._endpoint = Endpoint(config, accept_new_peers=True)
        self._epoch = self._endpoint.epoch
        #: The driver, once serving: it sends, and says when the input being handled arrived.
        self._driver: ServingDriver | None = None
        self._cache = reply_cache if reply_cache is not None else ReplyCache()
        self._failed: collections.Counter[str] = collections.Counter()
        #: Replies sent by calls and not yet acknowledged: a graceful shutdown waits for them.
        self._unacked_replies: set[tuple[Address, int]] = set()
        self._calls = self._make_executor(
            self._cache, self._send, self._failed,
            max_concurrent=max_concurrent, max_queued=max_queued,
            unacked=self._unacked_replies, queue=self._queue_reply,
        )
        self._shutting_down = False
        #: Clients whose calls a shutdown cancelled: their sessions close without FLAG_DRAINED.
        self._undrained: set[Address] = set()
        self._received = 0
        self._pings = 0
        self._malformed = 0
        #: Events other than the two of every call (see _handle_event).
        self._on_event: dict[type, Callable[[Any], None]] = {
            events.PeerUnreachable: self._on_unreachable,
            events.PeerRestarted: self._on_restarted,
            events.PeerClosed: self._on_closed,
            events.SendCapacityAvailable: _ignore,
        }
        #: Messages other than CALL, by kind.
        self._on_kind: dict[int, Callable[[Address, int, list[object]], None]] = {
            callproto.KIND_CANCEL: self._on_cancel,
            callproto.KIND_PING: self._on_ping,
            callproto.KIND_PROBE: self._on_probe,
        }

    @abstractmethod
    def _make_executor(self, *args: Any, **kwargs: Any) -> Executor:
        """The executor that runs admitted calls on this loop (see ``rpc._execution``)."""

    @abstractmethod
    def _on_drained(self) -> None:
        """The drain is complete: every call ended and every reply was acknowledged."""

    @property
    def epoch(self) -> int:
        """This server instance's transport epoch (changes on every restart)."""
        return self._endpoint.epoch

    def _begin_drain(self) -> None:
        """Start a graceful shutdown: refuse new calls; the loop then waits for _on_drained."""
        self._shutting_down = True
        self._calls.on_done = self._check_drained  # as each call ends, see if all have
        logger.info("shutting down: %d calls running, %d queued, %d replies unacknowledged",
                    self._calls.running, self._calls.queued, len(self._unacked_replies))
        self._check_drained()

    def _cancel_leftovers(self, grace: float) -> None:
        """The grace period is over: cancel the calls still running or queued."""
        leftover = self._calls.calls()
        if leftover:
            logger.warning("cancelling %d calls still running after %.1f s", len(leftover), grace)
        for call in leftover:
            call.cancel()
            self._undrained.add(call.addr)  # it may have run partly: its client must not assume not

    def _close_sessions(self, now: float) -> None:
        """CLOSE every client session, marking as drained those whose calls that ran were all
        answered and the answers acknowledged: their clients then know that nothing they still
        await ran (refusals still unacknowledged do not matter: those calls did not run)."""
        busy = self._undrained | {call.addr for call in self._calls.calls()}
        busy.update(addr for addr, _ in self._unacked_replies)
        self._endpoint.close_all_peers(
            now=now, drained=lambda addr: addr not in busy
        )

    def _check_drained(self) -> None:
        if (
            self._shutting_down
            and self._calls.idle()
            and not self._unacked_replies
        ):
            self._on_drained()

    # -- transport events -------------------------------------------------------------------

    def _handle_event(self, event: events.TransportEvent) -> None:
        """The driver's event callback; also the server's per-call hot path, hence one function.

        Every call brings two events, tested for first: its datagram acknowledges the previous
        reply (MessageAcked) and carries the CALL (MessageReceived), which is admitted and run
        (or queued) here; other messages go through _on_kind, other events through _on_event.
        Replies sent while a message is handled (inline handlers, refusals, cached replays,
        pings) only queue in the endpoint: the driver sends every pending datagram after each
        input anyway (Contract 2), so ``driver.send_message``'s own flush would be a second
        one per reply.
        """
        kind = type(event)
        if kind is events.MessageAcked:
            addr, message_id = event.addr, event.message_id  # type: ignore[union-attr]
            self._cache.reply_acked(addr, message_id)
            unacked = self._unacked_replies
            if unacked:
                unacked.discard((addr, message_id))
                if self._shutting_down:
                    self._check_drained()
            return
        if kind is not events.MessageReceived:
            self._on_event[kind](event)
            return
        addr = event.addr
        try:
            message = callproto.decode_untrusted(event.payload)  # type: ignore[union-attr]
            if type(message) is not tuple:  # not a CALL
                handler = self._on_kind.get(message[0])  # type: ignore[call-overload]
                if handler is None:
                    raise ProtocolError("unexpected message kind")  # noqa: TRY301
                handler(addr, event.peer_epoch, message)  # type: ignore[union-attr]
                return
        except ProtocolError:
            self._malformed += 1
            return
        call_no, service, version, method, budget, flags, floor, server_epoch, wire_args = (
            message
        )
        self._received += 1
        if server_epoch and server_epoch != self._epoch:
            self._refuse(addr, call_no, Status.WRONG_EPOCH, "call was for an earlier server")
            return
        plan = self._plans.get((service, version, method))
        if plan is None:
            _, status, body = self._services.resolve(service, version, method)
            self._refuse(addr, call_no, status, body)
            return
        key = (addr, event.peer_epoch)  # type: ignore[union-attr]
        driver = self._driver
        assert driver is not None
        now = driver.input_time  # when the CALL arrived: no clock read
        if flags & callproto.FLAG_ONEWAY:
            # No reply will carry the ACK: send it now, so the caller returns in one round trip.
            self._endpoint.acknowledge_now(addr, now=now)
        entry = None
        if not flags & callproto.FLAG_IDEMPOTENT:
            admitted = self._cache.admit(key, call_no, floor, now)
            if type(admitted) is not CacheEntry:
                admission, reply = admitted  # type: ignore[misc]
                self._not_admitted(addr, key, call_no, admission, reply)
                return
            entry = admitted
        calls = self._calls
        refusal = None
        if self._shutting_down or calls.full():
            refusal = self._refusal()
        if refusal is None:
            # decode_args's fast path, without its call: a one-payload method's argument
            # (bytes for the usual echo-like call) is valid as it came.
            only = plan.method.single_plain
            if (
                only is not None
                and type(wire_args) is dict
                and type(value := wire_args.get(only[0])) is only[1]
            ):
                args: tuple[object, ...] = (value,)
            else:
                try:
                    args = plan.method.decode_args(wire_args)
                except ValidationError as exc:  # the handler never sees bad values
                    refusal = Status.INVALID_ARGUMENT, f"{plan.service.name}.{exc}"
        if refusal is not None:
            reply = self._refuse(addr, call_no, *refusal)
            if entry is not None:
                self._cache.complete_entry(entry, reply)
            return
        deadline = None if budget is None else now + budget / 1000.0
        calls.submit(AdmittedCall(addr, key, call_no, flags, plan, args, deadline, entry), now)

    def _on_unreachable(self, event: events.PeerUnreachable) -> None:
        logger.info("client %s unreachable: %d replies abandoned",
                    event.addr, len(event.pending_message_ids))
        if event.pending_message_ids:
            self._undrained.add(event.addr)  # replies it may still await are lost for good
        for message_id in event.pending_message_ids:
            self._unacked_replies.discard((event.addr, message_id))
            # The reply stays cached, unbound: a probe or a duplicate CALL gets it again.
            self._cache.reply_abandoned(event.addr, message_id)
        self._check_drained()

    def _on_restarted(self, event: events.PeerRestarted) -> None:
        """The client restarted: its old session can never retransmit; drop it, cancel its calls."""
        old = (event.addr, event.old_epoch)
        self._cache.drop_session(old)
        orphans = [call for call in self._calls.calls() if call.key == old]
        logger.info("client %s restarted: dropped its session, cancelling %d calls",
                    event.addr, len(orphans))
        for call in orphans:
            call.cancel()
        self._forget_replies_to(event.addr)

    def _on_closed(self, event: events.PeerClosed) -> None:
        """The client closed its session: it will never send again nor read a reply.

        The transport dropped the replies it had not acknowledged. Calls still running or
        queued finish (one-way calls must) but send no reply; the reply cache releases the
        session at once (``docs/rpc-layer.md`` §2.2) instead of after ``session_ttl``.
        """
        key = (event.addr, event.epoch)
        logger.debug("client %s closed its session", event.addr)
        for call in self._calls.calls():
            if call.key == key:
                call.reply_wanted = False
        self._cache.close_session(key)
        self._forget_replies_to(event.addr)

    def _forget_replies_to(self, addr: Address) -> None:
        # In place: the executor holds the same set.
        unacked = self._unacked_replies
        unacked.difference_update([r for r in unacked if r[0] == addr])
        self._check_drained()

    # -- messages ---------------------------------------------------------------------------

    def _on_ping(self, addr: Address, epoch: int, message: list[object]) -> None:
        self._pings += 1
        call_no = callproto.decode_call_number_untrusted(message)
        self._queue(addr, callproto.encode_reply(call_no, Status.OK, None))

    def _on_probe(self, addr: Address, epoch: int, message: list[object]) -> None:
        """A client asks after calls it has waited on for a while (Birrell and Nelson's probe).

        The transport's ACK of the probe answers for every call still running or queued. A
        finished call's reply is sent again unless it is still in flight; a call the server
        holds nothing of gets ``CALL_UNKNOWN``, unless a message to the client is still
        unacknowledged (it may be that reply: the next probe asks again).
        """
        key = (addr, epoch)
        for call_no in callproto.decode_probe_untrusted(message):
            if self._calls.find((key, call_no)) is not None:
                continue
            entry = self._cache.lookup(key, call_no)
            if entry is not None:
                if entry.reply is not None and entry.message_id is None:
                    self._resend(key, call_no, entry.reply)
                continue  # running, reply in flight, or settled (the reply crossed the probe)
            if not self._endpoint.has_unacknowledged(addr):
                self._queue(addr, callproto.encode_reply(
                    call_no, Status.CALL_UNKNOWN, "the server holds no such call"
                ))

    def _on_cancel(self, addr: Address, epoch: int, message: list[object]) -> None:
        ident = ((addr, epoch), callproto.decode_call_number_untrusted(message))
        call = self._calls.find(ident)
        if call is not None:
            call.cancel()

    def _not_admitted(
        self,
        addr: Address,
        key: SessionKey,
        call_no: int,
        admission: Admission,
        reply: bytes | None,
    ) -> None:
        """A duplicate, stale or refused call: answer from the cache or refuse, never run."""
        if admission is Admission.REPLAY and reply is not None:
            self._resend(key, call_no, reply)
        elif admission is Admission.BUSY:
            self._refuse(addr, call_no, Status.SERVER_BUSY, "reply cache is full")

    def _refusal(self) -> tuple[Status, str] | None:
        if self._shutting_down:
            return Status.SHUTTING_DOWN, "the server is shutting down"
        if self._calls.full():
            return Status.SERVER_BUSY, "all handler slots and the wait queue are full"
        return None

    def _refuse(self, addr: Address, call_no: int, status: Status, text: object) -> bytes:
        self._failed[status.name] += 1
        reply = callproto.encode_reply(call_no, status, text)
        self._queue(addr, reply)
        return reply

    # -- sending ----------------------------------------------------------------------------

    def _send(self, addr: Address, payload: bytes, now: float | None = None) -> int | None:
        """Send ``payload`` to ``addr`` and flush (a reply from a worker); None if dropped."""
        assert self._driver is not None
        try:
            return self._driver.send_message(addr, payload)
        except SendBufferFull:
            # The client is not reading its replies; it will time out. Dropped and counted.
            self._failed["REPLY_DROPPED"] += 1
            self._undrained.add(addr)
            return None

    def _queue(self, addr: Address, payload: bytes) -> int | None:
        """Queue ``payload`` for ``addr`` while a message is handled: the driver sends it
        after the input (see _on_message); None if dropped."""
        driver = self._driver
        assert driver is not None
        try:
            return self._endpoint.send_message(addr, payload, now=driver.input_time)
        except SendBufferFull:
            self._failed["REPLY_DROPPED"] += 1
            return None

    def _queue_reply(self, addr: Address, payload: bytes, *, now: float) -> int:
        """The executor's way to queue a reply of a call run inline (see Executor)."""
        try:
            return self._endpoint.send_message(addr, payload, now=now)
        except SendBufferFull:
            self._undrained.add(addr)  # the call ran and its client never hears of it
            raise

    def _resend(self, key: SessionKey, call_no: int, reply: bytes) -> None:
        message_id = self._queue(key[0], reply)
        if message_id is not None:
            self._cache.bind_message(key, call_no, message_id)

    def statistics(self) -> ServerStatistics:
        """A snapshot of this server's counters."""
        return ServerStatistics(
            calls_received=self._received,
            calls_completed=self._calls.completed,
            calls_failed=dict(self._failed),
            in_flight=self._calls.running,
            queued=self._calls.queued,
            pings=self._pings,
            malformed_messages=self._malformed,
            handler_seconds=self._calls.handler_seconds,
            reply_cache=self._cache.statistics(),
            transport=self._endpoint.statistics(),
        )


def _ignore(event: object) -> None:
    """Servers never wait for send capacity: a full buffer drops the reply (counted)."""



__all__ = [
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_SHUTDOWN_GRACE",
    "ServerCore",
    "ServerStatistics",
]
