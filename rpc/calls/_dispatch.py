"""The server's service table: from ``(service, version, method)`` to a bound handler method.

Resolving a call and running its handler are kept apart from the server's life-cycle code: this
module knows how to find a handler, run it and turn whatever it does into a ``REPLY``.
"""

from __future__ import annotations

import dis
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rpc.calls import callproto
from rpc.calls._handler_checks import handler_problems
from rpc.calls.callproto import Status
from rpc.calls.schema import ValidationError
from rpc.calls.service import Handler, MethodSpec, ServiceSpec
from rpc.errors import ApplicationError, InvalidArgument

logger = logging.getLogger("rpc.server")

#: Service name reserved for the runtime itself (the null procedure travels as ``PING``).
RESERVED_SERVICE_PREFIX = "$"


#: Fragments of the names of the opcodes with which a coroutine can suspend (await, async
#: for/with, yield) in CPython 3.11 and later: a handler using none of them never suspends.
_SUSPENDING_OPCODES = ("AWAIT", "YIELD", "SEND", "ASYNC", "AITER", "ANEXT")


def never_suspends(fn: Callable[..., object]) -> bool:
    """True when ``fn`` is an ``async def`` whose body cannot suspend (it has no ``await``).

    Its coroutine then runs to completion in one ``send(None)``, touching no trio machinery
    (no checkpoint, no parking, no cancel status), so it can safely run inline in the task
    that received the call instead of costing a task hop to a worker. Anything else (other
    callables, wrappers, bodies that await) is judged unsafe.
    """
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None or not inspect.iscoroutinefunction(fn):
        return False
    return not any(
        fragment in instruction.opname
        for instruction in dis.get_instructions(code)
        for fragment in _SUSPENDING_OPCODES
    )


class CallPlan:
    """A resolved method: its spec and the handler's bound coroutine function.

    ``inline`` is True when the handler never suspends (:func:`never_suspends`).
    """

    __slots__ = ("fn", "inline", "method", "service")

    def __init__(
        self, service: ServiceSpec, method: MethodSpec[Any], fn: Callable[..., Awaitable[Any]]
    ) -> None:
        self.service = service
        self.method = method
        self.fn = fn
        self.inline = never_suspends(fn)

    def result_reply(self, call_no: int, result: object) -> tuple[Status, bytes]:
        """The status and encoded ``REPLY`` for a handler's return value."""
        method = self.method
        try:
            return Status.OK, callproto.encode_ok_reply(call_no, method.encode_result(result))
        except ValidationError as exc:
            logger.warning("%s.%s returned an invalid result: %s",
                           self.service.name, method.name, exc)
            status = Status.INVALID_RESULT
            return status, callproto.encode_reply(call_no, status, f"{self.service.name}.{exc}")

    def error_reply(self, call_no: int, exc: Exception) -> tuple[Status, bytes]:
        """The status and encoded ``REPLY`` for an exception the handler raised.

        Declared exceptions become ``APPLICATION_ERROR``; any other exception becomes
        ``REMOTE_ERROR`` (type name and message only: the traceback is logged, not sent).
        """
        if isinstance(exc, ApplicationError):
            status, body = self._declared(exc)
        else:
            status, body = self._unexpected(exc)
        return status, callproto.encode_reply(call_no, status, body)

    def _declared(self, exc: ApplicationError) -> tuple[Status, object]:
        try:
            encoded = self.method.encode_exception(exc)
        except ValidationError as bad:
            logger.warning("%s.%s raised an invalid %s: %s",
                           self.service.name, self.method.name, type(exc).__name__, bad)
            return Status.REMOTE_ERROR, [type(exc).__name__, f"invalid exception: {bad}"]
        if encoded is None:
            return self._unexpected(exc)
        return Status.APPLICATION_ERROR, list(encoded)

    def _unexpected(self, exc: Exception) -> tuple[Status, object]:
        logger.warning("%s.%s raised an undeclared exception",
                       self.service.name, self.method.name, exc_info=exc)
        return Status.REMOTE_ERROR, [type(exc).__name__, str(exc)]


class ServiceTable:
    """Every ``(service name, version)`` a server serves, with their method plans.

    Building one checks every handler (:mod:`rpc.calls._handler_checks`) and refuses them all at
    once with :class:`~rpc.InvalidArgument`, one line per problem, rather than let each call
    of an unfit method fail at run time.
    """

    def __init__(self, handlers: Sequence[Handler]) -> None:
        self._plans: dict[tuple[str, int], dict[int, CallPlan]] = {}
        #: Every method by ``(service, version, method number)``: one lookup per call.
        self.plans: dict[tuple[str, int, int], CallPlan] = {}
        self._versions: dict[str, tuple[int, int]] = {}
        problems: list[str] = []
        for handler in handlers:
            problems += self._add(handler)
        if len(problems) == 1:
            raise InvalidArgument(f"unfit handler: {problems[0]}")
        if problems:
            raise InvalidArgument(f"{len(problems)} problems with the handlers:\n"
                                  + "\n".join(problems))

    def _add(self, handler: Handler) -> list[str]:
        """Add ``handler``'s methods; returns their problems (the table is then refused)."""
        spec = getattr(handler, "SERVICE", None)
        if not isinstance(spec, ServiceSpec):
            raise InvalidArgument(f"{type(handler).__name__} has no SERVICE spec (not a Handler?)")
        if spec.name.startswith(RESERVED_SERVICE_PREFIX):
            raise InvalidArgument(f"service names starting with {RESERVED_SERVICE_PREFIX!r} "
                                  "are reserved")
        ident = (spec.name, spec.version)
        if ident in self._plans:
            raise InvalidArgument(f"two handlers for {spec.name} version {spec.version}")
        problems = handler_problems(handler, spec)
        plans = {} if problems else {
            method.number: CallPlan(spec, method, getattr(handler, method.python_name))
            for method in spec.methods
        }
        self._plans[ident] = plans
        for number, plan in plans.items():
            self.plans[spec.name, spec.version, number] = plan
        low, high = self._versions.get(spec.name, (spec.version, spec.version))
        self._versions[spec.name] = (min(low, spec.version), max(high, spec.version))
        return problems

    def resolve(
        self, service: str, version: int, method: int
    ) -> tuple[CallPlan | None, Status, object]:
        """The plan for a call, or ``None`` with the refusal status and body."""
        plans = self._plans.get((service, version))
        if plans is None:
            versions = self._versions.get(service)
            if versions is None:
                return None, Status.UNKNOWN_SERVICE, f"no service named {service!r}"
            return None, Status.VERSION_MISMATCH, list(versions)
        plan = plans.get(method)
        if plan is None:
            return None, Status.UNKNOWN_METHOD, (
                f"{service} version {version} has no method {method}"
            )
        return plan, Status.OK, None
