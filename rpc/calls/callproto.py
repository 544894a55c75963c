"""RPC-layer message formats: the payloads that ride inside reliable transport messages.

Every message is one msgpack array whose first element is its kind (see ``docs/rpc-layer.md``):

* ``CALL``   ``[1, call_no, service, version, method, budget_ms, flags, floor, server_epoch, args]``
* ``REPLY``  ``[2, call_no, status, body]``
* ``CANCEL`` ``[3, call_no]``
* ``PING``   ``[4, call_no]`` -- the null procedure; answered by a ``REPLY`` with status ``OK``.
* ``PROBE``  ``[5, [call_no, ...]]`` -- "are you still working on these?" (liveness of calls that
  were delivered long ago). The transport's ACK of the probe says yes for every call the server
  still runs or queues; a call whose reply it still has is answered again with that reply, and
  one it holds nothing of with a ``REPLY`` of status ``CALL_UNKNOWN``.

Encoders pack one list with a reused ``msgpack.Packer`` (one per thread: ``msgpack.packb``
builds a new packer on every call). A large ``bin`` argument or result is spliced in instead of
packed: the packer would copy it twice (into its buffer, then out into ``bytes``), a join once.

Decoders of bytes that came from the network end in ``_untrusted`` and raise only
:class:`rpc.errors.ProtocolError`; they check the common, valid case with one expression and
find the precise complaint only when that check fails.
"""

from __future__ import annotations

import enum
import struct
import threading
from typing import NamedTuple

import msgpack

from rpc.errors import ProtocolError

KIND_CALL = 1
KIND_REPLY = 2
KIND_CANCEL = 3
KIND_PING = 4
KIND_PROBE = 5

#: Call numbers one PROBE names at most (the oldest waiting calls go first).
MAX_PROBED_CALLS = 64

#: Call flags (bit set).
FLAG_ONEWAY = 0x1
FLAG_IDEMPOTENT = 0x2
_KNOWN_FLAGS = FLAG_ONEWAY | FLAG_IDEMPOTENT

#: ``server_epoch`` value meaning "the client has not heard from this server yet".
EPOCH_UNKNOWN = 0

_MAX_U64 = (1 << 64) - 1
_MAX_U32 = (1 << 32) - 1
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
    CALL_UNKNOWN = 11  # body: message -- answers a PROBE: the server holds neither call nor reply


#: ``Status.OK`` as the plain int it travels as.
STATUS_OK = 0


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


#: The fields of a checked ``CALL`` in :class:`CallMessage` order, as a plain tuple: the server's
#: hot path unpacks it at once, and building a named tuple costs more than the unpacking.
CallFields = tuple[int, str, int, int, int | None, int, int, int, object]


class ReplyMessage(NamedTuple):
    """A decoded ``REPLY``."""

    call_no: int
    status: Status
    body: object


#: ``bin`` values at least this large are spliced into the message rather than packed: below it
#: the saved copy costs less than assembling the pieces. 64 KiB is also where msgpack switches to
#: the bin 32 format, the only one the splice writes.
LARGE_BIN = 64 * 1024
#: msgpack bin 32 head: type byte 0xc6 and a big-endian length (msgpack spec, "bin format family").
_BIN32 = struct.Struct(">BI")
_BIN32_TYPE = 0xC6
#: What msgpack packs ``None`` as: the placeholder for the last element, cut off before splicing.
_NIL = b"\xc0"


class _Packers(threading.local):
    """One reusable packer per thread (a packer is not safe to share between threads)."""

    def __init__(self) -> None:
        packer = msgpack.Packer()
        self.pack = packer.pack
        self.map_header = packer.pack_map_header


_packers = _Packers()


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
    message = [
        KIND_CALL, call_no, service, version, method, budget_ms, flags, floor, server_epoch, args
    ]  # fmt: skip
    if type(args) is dict:
        # Any large bin value? A plain loop: a generator under any() costs about twice as much.
        for value in args.values():
            if type(value) is bytes and len(value) >= LARGE_BIN:
                message[-1] = None
                return _splice_map(_packers.pack(message), args)
    return _packers.pack(message)  # type: ignore[no-any-return]


def encode_reply(call_no: int, status: Status, body: object) -> bytes:
    """Encode a ``REPLY``."""
    # A plain int: msgpack packs an IntEnum member through its slow path for int subclasses.
    return _encode_reply(call_no, int(status), body)


def encode_ok_reply(call_no: int, body: object) -> bytes:
    """Encode a ``REPLY`` with status ``OK`` (every successful call: one call, no enum)."""
    if type(body) is bytes and len(body) >= LARGE_BIN:
        return _encode_reply(call_no, STATUS_OK, body)
    return _packers.pack((KIND_REPLY, call_no, STATUS_OK, body))  # type: ignore[no-any-return]


def _encode_reply(call_no: int, status: int, body: object) -> bytes:
    if type(body) is bytes and len(body) >= LARGE_BIN:
        packed = _packers.pack((KIND_REPLY, call_no, status, None))
        return _splice(packed, _bin_pieces(body))
    return _packers.pack((KIND_REPLY, call_no, status, body))  # type: ignore[no-any-return]


def _splice_map(packed_with_nil: bytes, args: dict[object, object]) -> bytes:
    """The message with its last element, the map ``args``, spliced in after its head."""
    pack = _packers.pack
    map_header: bytes = _packers.map_header(len(args))
    pieces = [map_header]
    for key, value in args.items():
        pieces.append(pack(key))
        if type(value) is bytes and len(value) >= LARGE_BIN:
            pieces += _bin_pieces(value)
        else:
            pieces.append(pack(value))
    return _splice(packed_with_nil, pieces)


def _bin_pieces(value: bytes) -> list[bytes]:
    """A large ``bin`` value as its head and the (uncopied) bytes themselves."""
    return [_BIN32.pack(_BIN32_TYPE, len(value)), value]


def _splice(packed_with_nil: bytes, pieces: list[bytes]) -> bytes:
    """Replace the trailing nil of a packed message by the already-encoded ``pieces``."""
    assert packed_with_nil.endswith(_NIL)
    return b"".join([packed_with_nil[:-1], *pieces])


def encode_cancel(call_no: int) -> bytes:
    """Encode a ``CANCEL`` (best effort: the client no longer waits for the reply)."""
    return _packers.pack([KIND_CANCEL, call_no])  # type: ignore[no-any-return]


def encode_ping(call_no: int) -> bytes:
    """Encode a ``PING``."""
    return _packers.pack([KIND_PING, call_no])  # type: ignore[no-any-return]


def encode_probe(call_nos: list[int]) -> bytes:
    """Encode a ``PROBE`` naming ``call_nos`` (at most :data:`MAX_PROBED_CALLS`)."""
    return _packers.pack([KIND_PROBE, call_nos[:MAX_PROBED_CALLS]])  # type: ignore[no-any-return]


def decode_probe_untrusted(message: list[object]) -> list[int]:
    """Check an unpacked ``PROBE`` array and return the call numbers it names."""
    if len(message) != 2 or type(message[1]) is not list:
        raise ProtocolError("PROBE must be [5, [call numbers]]")
    call_nos = message[1]
    if len(call_nos) > MAX_PROBED_CALLS:
        raise ProtocolError("PROBE names too many calls")
    return [_u64(call_no, "probed call number") for call_no in call_nos]


def unpack_untrusted(payload: bytes) -> list[object]:
    """Unpack a message into its top-level array; raise ``ProtocolError`` on anything else."""
    try:
        # raw=False and use_list=True are msgpack's defaults (>= 1.0): one keyword less to parse.
        value = msgpack.unpackb(payload, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types (ValueError, ExtraData, StackError...)
        raise ProtocolError(f"undecodable message: {type(exc).__name__}") from None
    if type(value) is not list or not value or type(value[0]) is not int:
        raise ProtocolError("message is not an array starting with its kind")
    return value


def decode_untrusted(payload: bytes) -> CallFields | list[object]:
    """Unpack a message: a ``CALL`` as its checked fields, any other message as its array.

    The server's per-call path: :func:`unpack_untrusted` and :func:`decode_call_untrusted` in
    one call, with no named tuple. Raises only ``ProtocolError``.
    """
    message = unpack_untrusted(payload)
    if message[0] != KIND_CALL:
        return message
    if len(message) != 10:
        raise ProtocolError("CALL must have 10 elements")
    _, call_no, service, version, method, budget, flags, floor, epoch, args = message
    # The common case in one expression; _explain_bad_call finds the culprit otherwise. The
    # bitwise or of integers is negative if any is, and below 2**n when all are in [0, 2**n):
    # one range check covers several fields.
    if (
        type(call_no) is int and type(version) is int and type(method) is int
        and type(flags) is int and type(floor) is int and type(epoch) is int
        and type(service) is str and len(service) <= MAX_SERVICE_NAME
        and 0 <= (call_no | floor | epoch) <= _MAX_U64 and 0 <= (version | method) <= _MAX_U32
        and 0 <= flags <= _KNOWN_FLAGS
        and (budget is None or (type(budget) is int and 0 <= budget <= _MAX_U32))
    ):
        return (call_no, service, version, method, budget, flags, floor, epoch, args)
    raise _explain_bad_call(message) or ProtocolError("malformed CALL")


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
    return CallMessage(*decode_call_fields_untrusted(message))


def decode_call_fields_untrusted(message: list[object]) -> CallFields:
    """:func:`decode_call_untrusted`, returning the fields as a plain tuple.

    Checks one field at a time (:func:`decode_untrusted` has the fast check for the server).
    """
    if len(message) != 10:
        raise ProtocolError("CALL must have 10 elements")
    problem = _explain_bad_call(message)
    if problem is not None:
        raise problem
    _, call_no, service, version, method, budget, flags, floor, epoch, args = message
    return (call_no, service, version, method, budget, flags, floor, epoch, args)  # type: ignore[return-value]


def _explain_bad_call(message: list[object]) -> ProtocolError | None:
    """The first rule a ``CALL`` array of 10 elements breaks, or None if it is valid."""
    _, call_no, service, version, method, budget, flags, floor, epoch, _ = message
    try:
        if type(service) is not str or len(service) > MAX_SERVICE_NAME:
            raise ProtocolError("CALL service must be a short string")  # noqa: TRY301
        if budget is not None:
            _u32(budget, "CALL budget")
        if _u32(flags, "CALL flags") & ~_KNOWN_FLAGS:
            raise ProtocolError("CALL has unknown flags")  # noqa: TRY301
        _u64(call_no, "CALL number")
        _u32(version, "CALL version")
        _u32(method, "CALL method")
        _u64(floor, "CALL floor")
        _u64(epoch, "CALL server epoch")
    except ProtocolError as exc:
        return exc
    return None


def decode_reply_untrusted(message: list[object]) -> ReplyMessage:
    """Check an unpacked ``REPLY`` array; raise ``ProtocolError`` if it is malformed."""
    if len(message) != 4:
        raise ProtocolError("REPLY must have 4 elements")
    _, call_no, status, body = message
    known = _STATUS_OF.get(status) if type(status) is int else None
    if known is None:
        raise ProtocolError(f"REPLY has unknown status {status!r}")
    if type(call_no) is not int or not 0 <= call_no <= _MAX_U64:
        raise ProtocolError("REPLY call number must be an unsigned 64-bit integer")
    return ReplyMessage(call_no, known, body)


def decode_reply_payload_untrusted(payload: bytes) -> tuple[int, Status, object] | None:
    """Unpack and check a message that should be a ``REPLY``: ``(call_no, status, body)``.

    The client's per-reply path: :func:`unpack_untrusted` and :func:`decode_reply_untrusted`
    in one call, with no named tuple. Returns None for a well-formed message of another kind
    (clients ignore those); raises only ``ProtocolError``.
    """
    message = unpack_untrusted(payload)
    if message[0] != KIND_REPLY:
        return None
    if len(message) == 4:
        _, call_no, status, body = message
        # The common case in one expression; decode_reply_untrusted explains the others.
        if type(status) is int and type(call_no) is int and 0 <= call_no <= _MAX_U64:
            known = _STATUS_OF.get(status)
            if known is not None:
                return (call_no, known, body)
    reply = decode_reply_untrusted(message)
    return (reply.call_no, reply.status, reply.body)


def decode_call_number_untrusted(message: list[object]) -> int:
    """Check an unpacked ``CANCEL`` or ``PING`` array and return its call number."""
    if len(message) != 2:
        raise ProtocolError("CANCEL and PING must have 2 elements")
    return _u64(message[1], "call number")


#: Status by wire value: a dict lookup is several times cheaper than calling the enum.
_STATUS_OF: dict[object, Status] = {int(s): s for s in Status}
