"""One outstanding call as the client's call table keeps it, and what is said of a call that
ended without a reply: its result slot, the client's counters, the probe schedule, outcomes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from rpc.calls.callproto import Status
from rpc.calls.schema import ValidationError
from rpc.calls.service import ServiceSpec
from rpc.errors import CallOutcome, DeadlineExceeded, InvalidArgument, RpcError
from rpc.transport.stats import EndpointStatistics

#: Longest wait between two probes of a call that was delivered and has no reply yet. Birrell
#: and Nelson's callers probe a server that holds a call in progress "periodically"; a second
#: keeps a crashed server's callers from waiting noticeably past ``peer_timeout``.
MAX_PROBE_INTERVAL: Final = 1.0
#: Probe ticks per ``peer_timeout`` at least: a call waits at most two ticks before its first
#: probe, so the probe goes out well before the liveness timeout it feeds can expire.
PROBE_TICKS_PER_PEER_TIMEOUT: Final = 4
#: The budget field is an unsigned 32-bit count of milliseconds (about 49 days).
MAX_BUDGET_MS = (1 << 32) - 1
#: :attr:`PendingCall.result` of a oneway call the transport acknowledged (it has no reply).
ACKED: Final[tuple[Status, object]] = (Status.OK, None)
#: What a finished call's :attr:`PendingCall.result` holds: its reply ``(status, body)``,
#: :data:`ACKED`, or the error that ended it.
CallResult = tuple[Status, object] | RpcError


@dataclasses.dataclass(frozen=True)
class ClientStatistics:
    """Counters of one client (async or blocking), with its transport's."""

    calls_started: int
    calls_succeeded: int
    #: Failed calls by exception class name (``"DeadlineExceeded"``, ``"ServerBusy"``...).
    calls_failed: Mapping[str, int]
    in_flight: int
    cancels_sent: int
    transport: EndpointStatistics
    #: Attempts made again under a ``RetryPolicy`` (a call retried twice counts 2).
    retries: int = 0
    #: PROBE messages sent about calls delivered long ago (liveness of the server).
    probes_sent: int = 0


class PendingCall:
    """One outstanding call (plain slots: this object is made once per call)."""

    __slots__ = (
        "aged", "call_no", "delivered", "oneway", "refusal", "result", "sent", "task", "wake",
    )

    def __init__(self, call_no: int, oneway: bool) -> None:
        self.call_no = call_no
        self.oneway = oneway
        #: True once the transport accepted the call's message.
        self.sent = False
        #: True once the transport acknowledged the call message or any reply arrived.
        self.delivered = False
        #: The reply ``(status, body)``, :data:`ACKED` for an acknowledged oneway call, or the
        #: ``RpcError`` that ended the call; ``None`` while outstanding. Plain values rather
        #: than ``outcome`` objects: building and unwrapping those cost three Python calls.
        self.result: CallResult | None = None
        #: Called once when ``result`` is set (the async client reschedules its task here).
        self.wake: Callable[[], None] | None = None
        #: Whatever ``wake`` needs to find the waiter (the async client's trio task).
        self.task: Any = None
        #: A oneway call's refusal ``(status, body)`` that arrived with the ack of its CALL.
        self.refusal: tuple[Status, object] | None = None
        #: True once a probe tick has seen the call outstanding: at the next tick it has waited
        #: at least a whole probe interval, and is probed if delivered (see calls_to_probe).
        self.aged = False


def probe_interval(peer_timeout: float) -> float:
    """Seconds between a client's probe ticks for a transport with this ``peer_timeout``."""
    return min(MAX_PROBE_INTERVAL, peer_timeout / PROBE_TICKS_PER_PEER_TIMEOUT)


def budget_ms(timeout: float) -> int:
    """The wire budget of a timeout: whole milliseconds, rounded up, within the field."""
    return min(MAX_BUDGET_MS, max(0, math.ceil(timeout * 1000.0)))


def reply_of(result: CallResult) -> tuple[Status, object] | None:
    """A finished call's reply (``None`` for an acknowledged oneway call); raises its error."""
    if type(result) is tuple:
        return None if result is ACKED else result
    assert isinstance(result, RpcError)
    raise result


def invalid_argument(service: ServiceSpec, exc: ValidationError) -> InvalidArgument:
    """The error for arguments that failed validation (the call was not sent)."""
    return InvalidArgument(f"{service.name}.{exc}", outcome=CallOutcome.NOT_DELIVERED)


def outcome_once_sent(pending: PendingCall) -> CallOutcome:
    """What is known about a call that failed without a reply: once sent, nothing.

    Unacknowledged is not undelivered: the server may have the CALL while every acknowledgement
    was lost (a one-way partition does exactly that), and after a deadline the transport even
    keeps retransmitting it (acceptance scenario 9). Only a call that never reached the
    transport is certainly not delivered.
    """
    if pending.delivered or pending.sent:
        return CallOutcome.UNKNOWN
    return CallOutcome.NOT_DELIVERED


def deadline_exceeded(pending: PendingCall, timeout: float | None) -> DeadlineExceeded:
    """The error for a call whose deadline passed (see :func:`outcome_once_sent`)."""
    return DeadlineExceeded(f"no reply within {timeout} s", outcome=outcome_once_sent(pending))


__all__ = [
    "ACKED",
    "CallResult",
    "ClientStatistics",
    "PendingCall",
    "budget_ms",
    "deadline_exceeded",
    "invalid_argument",
    "outcome_once_sent",
    "probe_interval",
    "reply_of",
]
