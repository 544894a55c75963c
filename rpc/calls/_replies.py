"""Turning a ``REPLY`` into the call's result or into the ``RpcError`` its status stands for.

The one mapping from reply statuses to exceptions and outcomes, for every client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpc.calls.callproto import Status
from rpc.calls.schema import ValidationError
from rpc.calls.service import MethodSpec, ServiceSpec
from rpc.errors import (
    CallLost,
    CallOutcome,
    InvalidArgument,
    ProtocolError,
    RemoteError,
    RpcError,
    ServerBusy,
    ServerRestarted,
    ShuttingDown,
    UnknownMethod,
    UnknownService,
    VersionMismatch,
)


def _version_mismatch(service: ServiceSpec, body: object) -> RpcError:
    if isinstance(body, list) and len(body) == 2 and all(type(v) is int for v in body):
        low, high = body
        return VersionMismatch(
            f"server serves {service.name} versions {low}..{high}, not {service.version}",
            low=low,
            high=high,
        )
    return ProtocolError("malformed VERSION_MISMATCH reply", outcome=CallOutcome.NOT_EXECUTED)


def _remote_error(body: object) -> RpcError:
    if isinstance(body, list) and len(body) == 2 and all(type(v) is str for v in body):
        return RemoteError(body[0], body[1])
    return ProtocolError("malformed REMOTE_ERROR reply", outcome=CallOutcome.EXECUTED)


def _text(body: object) -> str:
    return body if type(body) is str else repr(body)[:200]


_SIMPLE_ERRORS: dict[Status, Callable[[str], RpcError]] = {
    Status.UNKNOWN_SERVICE: UnknownService,
    Status.UNKNOWN_METHOD: UnknownMethod,
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.SERVER_BUSY: ServerBusy,
    Status.SHUTTING_DOWN: ShuttingDown,
    Status.WRONG_EPOCH: lambda m: ServerRestarted(m, outcome=CallOutcome.NOT_EXECUTED),
    Status.INVALID_RESULT: lambda m: InvalidArgument(m, outcome=CallOutcome.EXECUTED),
    Status.CALL_UNKNOWN: CallLost,
}


def result_of_reply(
    service: ServiceSpec, method: MethodSpec[Any], status: Status, body: object
) -> Any:
    """The call's result for an ``OK`` reply; raises the matching ``RpcError`` otherwise."""
    if status is Status.OK:
        try:
            return method.decode_result(body)
        except ValidationError as exc:
            raise ProtocolError(
                f"{service.name}: malformed result: {exc}", outcome=CallOutcome.EXECUTED
            ) from None
    raise error_of_reply(service, method, status, body)


def error_of_reply(
    service: ServiceSpec, method: MethodSpec[Any], status: Status, body: object
) -> RpcError:
    """The exception a non-``OK`` reply stands for."""
    if status is Status.APPLICATION_ERROR:
        if isinstance(body, list) and len(body) == 2 and type(body[0]) is int:
            try:
                return method.decode_exception(body[0], body[1])
            except ValidationError as exc:
                return ProtocolError(f"{service.name}: {exc}", outcome=CallOutcome.EXECUTED)
        return ProtocolError("malformed APPLICATION_ERROR reply", outcome=CallOutcome.EXECUTED)
    if status is Status.REMOTE_ERROR:
        return _remote_error(body)
    if status is Status.VERSION_MISMATCH:
        return _version_mismatch(service, body)
    simple = _SIMPLE_ERRORS.get(status)
    if simple is None:
        return ProtocolError(f"unexpected reply status {status.name}")
    return simple(_text(body))


__all__ = ["error_of_reply", "result_of_reply"]
