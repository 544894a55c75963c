"""RPC-layer message formats: the payloads that ride inside reliable transport messages.

Every message is one msgpack array whose first element is its kind (see ``docs/rpc-layer.md``):

* ``CALL``   ``[1, call_no, service, version, method, budget_ms, flags, floor, server_epoch, args]``
* ``REPLY``  ``[2, call_no, status, body]``
* ``CANCEL`` ``[3, call_no]``
* ``PING``   ``[4, call_no]`` -- the null procedure; answered by a ``REPLY`` with status ``OK``.

Encoders are single ``packb`` calls of a list (the per-call hot path). Decoders of bytes that
came from the network end in ``_untrusted`` and raise only :class:`rpc.errors.ProtocolError`.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import msgpack

from rpc.errors import ProtocolError

KIND_CALL = 1
KIND_REPLY = 2
KIND_CANCEL = 3
KIND_PING = 4

#: Call flags (bit set).
FLAG_ONEWAY = 0x1
FLAG_IDEMPOTENT = 0x2
_KNOWN_FLAGS = FLAG_ONEWAY | FLAG_IDEMPOTENT

#: ``server_epoch`` value meaning "the client has not heard from this server yet".
EPOCH_UNKNOWN = 0

_MAX_U64 = (1 << 64) - 1
#: Longest service name accepted on the wire; generous, it only stops absurd inputs.
MAX_SERVICE_NAME = 256


class Status(enum.IntEnum):
    """Server-to-client reply status codes (the ``status`` element of a ``REPLY``)."""

    OK = 0  # body: encoded result (nil for void)
    APPLICATION_ERROR = 1  # body: [exception number, encoded exception]
    REMOTE_ERROR = 2  # body: [type name, message]
    UNKNOWN_SERVICE = 3  # body: message
    UNKNOWN_METHOD = 4  # body: message
    VERSION_MISMATCH = 5  # body: [lowest version, highest version]
    INVALID_ARGUMENT = 6  # body: message
    SERVER_BUSY = 7  # body: message
    SHUTTING_DOWN = 8  # body: message
    WRONG_EPOCH = 9  # body: message -- the call was meant for an earlier server instance
    INVALID_RESULT = 10  # body: message -- the handler's return value failed validation


class CallMessage(NamedTuple):
    """A decoded ``CALL``."""

    call_no: int
    service: str
    version: int
    method: int
    budget_ms: int | None
    flags: int
    floor: int
    server_epoch: int
    args: object


class ReplyMessage(NamedTuple):
    """A decoded ``REPLY``."""

    call_no: int
    status: Status
    body: object


def encode_call(
    call_no: int,
    service: str,
    version: int,
    method: int,
    budget_ms: int | None,
    flags: int,
    floor: int,
    server_epoch: int,
    args: object,
) -> bytes:
    """Encode a ``CALL`` (``args`` is already msgpack-ready, from ``MethodSpec.encode_args``)."""
    return msgpack.packb(  # type: ignore[no-any-return]
        [KIND_CALL, call_no, service, version, method, budget_ms, flags, floor, server_epoch, args]
    )


def encode_reply(call_no: int, status: Status, body: object) -> bytes:
    """Encode a ``REPLY``."""
    return msgpack.packb([KIND_REPLY, call_no, int(status), body])  # type: ignore[no-any-return]


def encode_cancel(call_no: int) -> bytes:
    """Encode a ``CANCEL`` (best effort: the client no longer waits for the reply)."""
    return msgpack.packb([KIND_CANCEL, call_no])  # type: ignore[no-any-return]


def encode_ping(call_no: int) -> bytes:
    """Encode a ``PING``."""
    return msgpack.packb([KIND_PING, call_no])  # type: ignore[no-any-return]


def unpack_untrusted(payload: bytes) -> list[object]:
    """Unpack a message into its top-level array; raise ``ProtocolError`` on anything else."""
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:  # msgpack raises many types (ValueError, ExtraData, StackError...)
        raise ProtocolError(f"undecodable message: {type(exc).__name__}") from None
    if not isinstance(value, list) or not value or type(value[0]) is not int:
        raise ProtocolError("message is not an array starting with its kind")
    return value


def message_kind(message: list[object]) -> int:
    """The kind of an unpacked message (first element, already checked to be an int)."""
    kind = message[0]
    assert isinstance(kind, int)
    return kind


def _u64(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_U64:
        raise ProtocolError(f"{what} must be an unsigned 64-bit integer")
    return value


def _u32(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < (1 << 32):
        raise ProtocolError(f"{what} must be an unsigned 32-bit integer")
    return value


def decode_call_untrusted(message: list[object]) -> CallMessage:
    """Check an unpacked ``CALL`` array; raise ``ProtocolError`` if it is malformed."""
    if len(message) != 10:
        raise ProtocolError("CALL must have 10 elements")
    _, call_no, service, version, method, budget, flags, floor, epoch, args = message
    if type(service) is not str or len(service) > MAX_SERVICE_NAME:
        raise ProtocolError("CALL service must be a short string")
    if budget is not None:
        budget = _u32(budget, "CALL budget")
    flags = _u32(flags, "CALL flags")
    if flags & ~_KNOWN_FLAGS:
        raise ProtocolError("CALL has unknown flags")
    return CallMessage(
        _u64(call_no, "CALL number"),
        service,
        _u32(version, "CALL version"),
        _u32(method, "CALL method"),
        budget,
        flags,
        _u64(floor, "CALL floor"),
        _u64(epoch, "CALL server epoch"),
        args,
    )


def decode_reply_untrusted(message: list[object]) -> ReplyMessage:
    """Check an unpacked ``REPLY`` array; raise ``ProtocolError`` if it is malformed."""
    if len(message) != 4:
        raise ProtocolError("REPLY must have 4 elements")
    status = message[2]
    if type(status) is not int or status not in _STATUS_VALUES:
        raise ProtocolError(f"REPLY has unknown status {status!r}")
    return ReplyMessage(_u64(message[1], "REPLY call number"), Status(status), message[3])


def decode_call_number_untrusted(message: list[object]) -> int:
    """Check an unpacked ``CANCEL`` or ``PING`` array and return its call number."""
    if len(message) != 2:
        raise ProtocolError("CANCEL and PING must have 2 elements")
    return _u64(message[1], "call number")


_STATUS_VALUES = frozenset(int(s) for s in Status)
