"""Service tables: what generated code tells the runtime about each service and method.

A generated module builds one :class:`ServiceSpec` per service version. Its
:class:`MethodSpec` entries carry the argument, result and exception descriptors and do all
marshalling, so neither generated code nor the transport contains any (Contract 1 in
``docs/design.md``).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from rpc.calls.retry import RetryPolicy
from rpc.calls.schema import ExceptionOf, TypeDesc, ValidationError
from rpc.errors import ApplicationError

R = TypeVar("R")
_Codec = Callable[[Any, int], object]
#: What ``dict.get`` returns for a parameter the wire map lacks.
_ABSENT: Final = object()


@dataclasses.dataclass(frozen=True)
class Param:
    """One numbered parameter of a method; arguments travel like struct fields."""

    number: int
    name: str
    type: TypeDesc
    #: Optional parameters may be ``None``; they are then left off the wire.
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class MethodSpec(Generic[R]):
    """One method of a service, with the codecs of its arguments, result and exceptions.

    ``R`` is the Python type of the result (``None`` for ``void``). Every ``encode_*`` and
    ``decode_*`` method raises only :class:`~rpc.schema.ValidationError`.
    """

    name: str
    number: int
    params: tuple[Param, ...]
    result: TypeDesc | None  # None: void
    throws: tuple[tuple[int, ExceptionOf], ...] = ()
    oneway: bool = False
    idempotent: bool = False
    doc: str = ""
    python_name: str = ""

    # Precomputed plans, so the per-call work is one loop over tuples.
    # Per parameter: number, name, optional, bound encoder, bound decoder, and the type whose
    # exact instances need no conversion (``TypeDesc.plain``; ``NoneType`` never matches).
    _arg_plan: tuple[tuple[int, str, bool, _Codec, _Codec, type], ...] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    #: ``(number, plain type)`` of a method's only parameter when it is required and has a
    #: plain type (``TypeDesc.plain``: a ``bytes`` payload); ``None`` otherwise. An argument
    #: of exactly that type is valid as it is (the server checks it before ``decode_args``).
    single_plain: tuple[int, type] | None = dataclasses.field(
        init=False, repr=False, compare=False
    )
    #: Results of exactly this type are returned as they are (``TypeDesc.plain``; for ``void``
    #: methods ``NoneType``): both clients check it before calling :meth:`decode_result`.
    result_plain: type = dataclasses.field(init=False, repr=False, compare=False)
    _throws_by_number: dict[int, ExceptionOf] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    #: ``"name() result"``: where a bad result is, built once rather than on every call.
    _result_path: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.python_name:
            object.__setattr__(self, "python_name", self.name)
        plan = tuple(
            (p.number, p.name, p.optional, p.type._enc, p.type._dec, _plain(p.type))
            for p in self.params
        )
        object.__setattr__(self, "_arg_plan", plan)
        only = self.params[0] if len(self.params) == 1 else None
        single = (
            (only.number, only.type.plain)
            if only is not None and not only.optional and only.type.plain is not None
            else None
        )
        object.__setattr__(self, "single_plain", single)
        object.__setattr__(self, "result_plain", _plain(self.result))
        object.__setattr__(self, "_throws_by_number", dict(self.throws))
        object.__setattr__(self, "_result_path", f"{self.name}() result")

    def _arg_path(self, name: str) -> str:
        return f"{self.name}({name})"

    def encode_args(self, args: Sequence[object]) -> object:
        """Validate positional arguments and return the wire map ``{param_number: value}``."""
        single = self.single_plain
        if single is not None and len(args) == 1:  # the one-payload method: no loop at all
            value = args[0]
            number, plain = single
            if type(value) is plain:
                return {number: value}
        plan = self._arg_plan
        if len(args) != len(plan):
            raise ValidationError(
                f"{self.name}()", f"takes {len(plan)} arguments, {len(args)} given"
            )
        out: dict[int, object] = {}
        for (number, name, optional, encode, _, plain), value in zip(plan, args):
            if type(value) is plain:  # valid as it is (a bytes payload): no encoder call
                out[number] = value
                continue
            if value is None:
                if optional:
                    continue
                raise ValidationError(self._arg_path(name), "required argument is None")
            try:
                out[number] = encode(value, 0)
            except ValidationError as exc:
                raise exc.prefixed(self._arg_path(name)) from None
            except RecursionError:
                raise ValidationError(self._arg_path(name), "value nested too deeply") from None
        return out

    def decode_args(self, wire: object) -> tuple[object, ...]:
        """Validate untrusted arguments; returns them in parameter order.

        Unknown parameter numbers are ignored; missing optional parameters are ``None``.
        """
        if not isinstance(wire, dict):
            raise ValidationError(f"{self.name}()", "arguments are not a map")
        single = self.single_plain
        if single is not None:  # the one-payload method: no loop, no list
            value = wire.get(single[0], _ABSENT)
            if type(value) is single[1]:
                return (value,)
        out: list[object] = []
        get = wire.get
        for number, name, optional, _, decode, plain in self._arg_plan:
            # One lookup; _ABSENT, not None, marks a missing entry (nil is a value to check).
            value = get(number, _ABSENT)
            if type(value) is plain:  # valid as it is: no decoder call
                out.append(value)
            elif value is not _ABSENT:
                try:
                    out.append(decode(value, 0))
                except ValidationError as exc:
                    raise exc.prefixed(self._arg_path(name)) from None
                except RecursionError:
                    raise ValidationError(self._arg_path(name), "nested too deeply") from None
            elif optional:
                out.append(None)
            else:
                raise ValidationError(self._arg_path(name), "required argument is missing")
        return tuple(out)

    def encode_result(self, value: object) -> object:
        """Validate the handler's return value; ``void`` methods must return ``None``."""
        # TypeDesc.encode(value, path), inlined: every call passes here.
        if type(value) is self.result_plain:
            return value
        result = self.result
        if result is None:
            if value is not None:
                raise ValidationError(self._result_path, "void method returned a value")
            return None
        try:
            return result._enc(value, 0)
        except ValidationError as exc:
            raise exc.prefixed(self._result_path) from None
        except RecursionError:
            raise ValidationError(self._result_path, "value nested too deeply") from None

    def decode_result(self, wire: object) -> R:
        """Validate an untrusted result."""
        # TypeDesc.decode(wire, path), inlined: every call passes here.
        if type(wire) is self.result_plain:
            return wire  # type: ignore[return-value]  # plain: valid as it is
        result = self.result
        if result is None:
            if wire is not None:
                raise ValidationError(self._result_path, "void method returned a value")
            return None  # type: ignore[return-value]  # R is None for void methods
        try:
            value: Any = result._dec(wire, 0)
        except ValidationError as exc:
            raise exc.prefixed(self._result_path) from None
        except RecursionError:
            raise ValidationError(self._result_path, "value nested too deeply") from None
        return value  # type: ignore[no-any-return]  # descriptor checked the type

    def encode_exception(self, exc: BaseException) -> tuple[int, object] | None:
        """Encode a declared exception as ``(throws_number, wire)``; ``None`` if undeclared."""
        for number, desc in self.throws:
            if isinstance(exc, desc.cls):
                return number, desc.encode(exc, f"{self.name}() throws {desc.name}")
        return None

    def decode_exception(self, number: int, wire: object) -> ApplicationError:
        """Decode an untrusted declared exception into the application's exception object."""
        desc = self._throws_by_number.get(number) if type(number) is int else None
        if desc is None:
            raise ValidationError(f"{self.name}()", f"undeclared exception number {number!r:.40}")
        exc = desc.decode(wire, f"{self.name}() throws {desc.name}")
        if not isinstance(exc, ApplicationError):
            raise ValidationError(f"{self.name}()", f"{desc.name} is not an ApplicationError")
        return exc


def _plain(desc: TypeDesc | None) -> type:
    """The type whose exact instances pass ``desc`` unconverted (``NoneType`` for void)."""
    if desc is None:
        return type(None)
    return desc.plain if desc.plain is not None else _NeverPlain


class _NeverPlain:
    """Stands for "no plain type": nothing on the wire or in a call is an instance of it."""


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """One version of one service: its name, version and method table."""

    name: str
    version: int
    methods: tuple[MethodSpec[Any], ...]
    doc: str = ""

    _by_number: dict[int, MethodSpec[Any]] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_number", {m.number: m for m in self.methods})

    def __hash__(self) -> int:
        # Runtimes key tables by service; hashing every method spec each time would be slow.
        return hash((self.name, self.version))

    def method(self, number: int) -> MethodSpec[Any] | None:
        """The method with this number, or ``None``."""
        return self._by_number.get(number)


class AsyncCaller(Protocol):
    """What an async generated client calls through (implemented by ``rpc.Client``)."""

    async def call(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        args: tuple[object, ...],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> R:
        """Make one call and return its decoded result (raises ``RpcError`` subclasses).

        ``retry`` overrides the caller's default ``RetryPolicy`` for this call.
        """
        ...


class SyncCaller(Protocol):
    """What a blocking generated client calls through (implemented by ``rpc.SyncClient``)."""

    def call(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        args: tuple[object, ...],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> R:
        """Make one call and return its decoded result (raises ``RpcError`` subclasses).

        ``retry`` overrides the caller's default ``RetryPolicy`` for this call.
        """
        ...


class Handler(abc.ABC):  # abstract methods live in the generated subclasses
    """Base of generated handler classes; ``SERVICE`` names the service they implement.

    The server calls ``getattr(handler, method.python_name)(*args)`` and awaits the result.
    """

    SERVICE: ClassVar[ServiceSpec]


__all__ = ["AsyncCaller", "Handler", "MethodSpec", "Param", "ServiceSpec", "SyncCaller"]
