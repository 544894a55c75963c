"""The one exception hierarchy of the framework, rooted at :class:`RpcError`.

Every error tells the caller what happened to the call, through :attr:`RpcError.outcome`:

* ``NOT_DELIVERED`` -- the server never received the call; retrying is always safe.
* ``NOT_EXECUTED``  -- the server received the call but refused it before running the handler
  (unknown method, invalid argument, too busy, shutting down); retrying is safe.
* ``EXECUTED``      -- the handler ran (it raised, or its reply is what you got).
* ``UNKNOWN``       -- the call may or may not have run (deadline passed or peer vanished after
  the call was sent); retry only idempotent operations.

:attr:`RpcError.safe_to_retry` is true for the first two outcomes, and for any error that ended
a call of an ``idempotent`` method (:attr:`RpcError.idempotent`).

Any exception escaping the library that is not an ``RpcError`` (or trio's own cancellation)
is a bug.
"""

from __future__ import annotations

import enum


class CallOutcome(enum.Enum):
    """What is known about whether a failed call ran on the server."""

    NOT_DELIVERED = "not delivered"
    NOT_EXECUTED = "delivered, not executed"
    EXECUTED = "executed"
    UNKNOWN = "outcome unknown"

    @property
    def safe_to_retry(self) -> bool:
        """True when a retry cannot make the handler run twice."""
        return self in (CallOutcome.NOT_DELIVERED, CallOutcome.NOT_EXECUTED)


class RpcError(Exception):
    """Root of every error the framework raises."""

    #: Default outcome for the class; instances may override it via the constructor.
    default_outcome: CallOutcome = CallOutcome.UNKNOWN
    #: True when the error ended a call of an ``idempotent`` method (the clients set it as the
    #: error leaves ``call``): running such a call again is harmless, whatever its outcome.
    idempotent: bool = False
    #: How many attempts the call made before this error ended it (see ``rpc.RetryPolicy``).
    attempts: int = 1

    def __init__(self, message: str = "", *, outcome: CallOutcome | None = None) -> None:
        super().__init__(message)
        self.outcome: CallOutcome = outcome if outcome is not None else self.default_outcome

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0]) if self.args else ""

    @property
    def safe_to_retry(self) -> bool:
        """True when retrying the call cannot do harm: it did not run (``outcome``), or its
        method is idempotent (running it twice is harmless; an ``EXECUTED`` error, such as an
        application error, is then safe but pointless to retry)."""
        return self.idempotent or self.outcome.safe_to_retry


class ApplicationError(RpcError):
    """Base class of every exception declared in an IDL file (generated classes subclass it).

    The handler raised it on purpose, so the call was executed.
    """

    default_outcome = CallOutcome.EXECUTED

    def __init__(self, message: str = "", *, outcome: CallOutcome | None = None) -> None:
        super().__init__(message, outcome=outcome)


class RemoteError(RpcError):
    """The handler raised an exception that its method does not declare.

    Carries the exception's type name and message; the server's traceback stays on the server.
    """

    default_outcome = CallOutcome.EXECUTED

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.remote_message = message


class CallRejected(RpcError):
    """The server received the call and refused it before running any handler."""

    default_outcome = CallOutcome.NOT_EXECUTED


class UnknownService(CallRejected):
    """The server does not serve the requested service."""


class UnknownMethod(CallRejected):
    """The server's service has no method with the requested number."""


class VersionMismatch(CallRejected):
    """The server serves the service, but not the requested version."""

    def __init__(self, message: str, *, low: int, high: int) -> None:
        super().__init__(message)
        self.low = low
        self.high = high


class InvalidArgument(CallRejected):
    """An argument (or result) does not match its IDL type or bounds.

    Raised on the client before sending (outcome ``NOT_DELIVERED``) or by the server when a
    call's arguments fail validation there (outcome ``NOT_EXECUTED``).
    """


class ServerBusy(CallRejected):
    """The server is at its concurrency limit and its wait queue is full."""


class ShuttingDown(CallRejected):
    """The server is shutting down and takes no new calls."""


class DeadlineExceeded(RpcError):
    """The call's deadline passed before its reply arrived."""


class PeerUnreachable(RpcError):
    """The peer stopped answering: nothing was acknowledged within the liveness timeout."""


class ServerRestarted(RpcError):
    """The server restarted (new epoch) while the call was outstanding.

    The old server may have run the call before it died; the new one will not run it.
    """


class CallLost(RpcError):
    """The server is alive but holds neither the call nor its reply (answer to a probe).

    It may have run the call; its reply was lost (for example, the server gave up
    retransmitting it while the path was down).
    """


class ProtocolError(RpcError):
    """The peer sent something that breaks the protocol (for example a malformed reply)."""


class ClientClosed(RpcError):
    """The client (or connection) was closed, so the call could not be made."""

    default_outcome = CallOutcome.NOT_DELIVERED


class SendBufferFull(RpcError):
    """The transport's send buffer for this peer is full: wait for capacity, then retry."""

    default_outcome = CallOutcome.NOT_DELIVERED


class MessageTooLarge(RpcError):
    """The message exceeds the transport's ``max_message_size``; it was not sent."""

    default_outcome = CallOutcome.NOT_DELIVERED


class BadDatagram(RpcError):
    """An untrusted datagram failed to decode. Raised and caught inside the transport only."""

    default_outcome = CallOutcome.NOT_DELIVERED


__all__ = [
    "ApplicationError",
    "BadDatagram",
    "CallLost",
    "CallOutcome",
    "CallRejected",
    "ClientClosed",
    "DeadlineExceeded",
    "InvalidArgument",
    "MessageTooLarge",
    "PeerUnreachable",
    "ProtocolError",
    "RemoteError",
    "RpcError",
    "SendBufferFull",
    "ServerBusy",
    "ServerRestarted",
    "ShuttingDown",
    "UnknownMethod",
    "UnknownService",
    "VersionMismatch",
]
