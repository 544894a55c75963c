"""``rpc.Server(...)`` refuses handlers it could never call, naming service, method and problem."""

from __future__ import annotations

import abc
import functools
from typing import Any, ClassVar

import pytest
import trio
import trio.testing

import rpc
from rpc.calls import schema
from rpc.testing import SimNetwork
from tests.runtime.harness import SERVER_ADDR, LabImpl, LabV1Impl, sim_lab, sim_server
from tests.runtime.lab_service import LAB_V1, Color, LabClient, LabV1Client


def refusal(*handlers: object) -> str:
    """The message with which building a server of ``handlers`` is refused."""
    with pytest.raises(rpc.InvalidArgument) as info:
        rpc.Server(handlers)  # type: ignore[arg-type]  # deliberately unfit handlers
    return str(info.value)


def test_missing_method_is_refused() -> None:
    class NoLegacy(rpc.Handler):
        SERVICE = LAB_V1

    message = refusal(NoLegacy())
    assert "Lab version 1: NoLegacy.legacy(): is missing" in message


def test_plain_def_is_refused() -> None:
    class PlainDivide(LabImpl):
        def divide(self, a: int, b: int) -> float:  # type: ignore[override]
            return a / b

    message = refusal(PlainDivide())
    assert "Lab version 2: PlainDivide.divide(): is not a coroutine function" in message


def test_plain_def_returning_a_coroutine_is_refused() -> None:
    class Indirect(LabImpl):
        def divide(self, a: int, b: int) -> Any:  # type: ignore[override]
            return LabImpl.divide(self, a, b)

    assert "Indirect.divide(): is not a coroutine function" in refusal(Indirect())


def test_wrong_parameter_name_is_refused() -> None:
    class Renamed(LabImpl):
        async def divide(self, a: int, c: int) -> float:  # type: ignore[override]
            return a / c

    message = refusal(Renamed())
    assert "Lab version 2: Renamed.divide(): parameter 2 is 'c', the IDL's is 'b'" in message


def test_wrong_parameter_count_is_refused() -> None:
    class OneArgument(LabImpl):
        async def divide(self, a: int) -> float:  # type: ignore[override]
            return float(a)

    message = refusal(OneArgument())
    assert "OneArgument.divide(): takes 1 of the IDL's 2 parameters (missing 'b')" in message


def test_extra_parameter_without_default_is_refused() -> None:
    class Extra(LabImpl):
        async def divide(self, a: int, b: int, c: int) -> float:  # type: ignore[override]
            return a / b / c

    assert "Extra.divide(): extra parameter 'c' has no default" in refusal(Extra())


def test_keyword_only_parameter_without_default_is_refused() -> None:
    class KeywordOnly(LabImpl):
        async def divide(self, a: int, b: int, *, c: int) -> float:  # type: ignore[override]
            return a / b / c

    assert "KeywordOnly.divide(): keyword-only parameter 'c' has no default" in refusal(
        KeywordOnly()
    )


def test_every_problem_of_every_handler_is_reported() -> None:
    class Several(LabImpl):
        def divide(self, b: int, a: int) -> float:  # type: ignore[override]
            return a / b

        async def bump(self, name: str) -> int:  # type: ignore[override]
            return 0

    class NoLegacy(rpc.Handler):
        SERVICE = LAB_V1

    lines = refusal(Several(), NoLegacy()).splitlines()
    assert lines[0] == "5 problems with the handlers:"
    assert lines[1:] == [
        "Lab version 2: Several.divide(): is not a coroutine function (write it as async def)",
        "Lab version 2: Several.divide(): parameter 1 is 'b', the IDL's is 'a'",
        "Lab version 2: Several.divide(): parameter 2 is 'a', the IDL's is 'b'",
        "Lab version 2: Several.bump(): parameter 1 is 'name', the IDL's is 'key'",
        "Lab version 1: NoLegacy.legacy(): is missing",
    ]


async def serve_and_divide(impl: LabImpl) -> float:
    """Serve ``impl`` and call its ``divide(7, 2)`` through a client."""
    async with sim_lab(impl) as (_, _, client):
        return await LabClient(client).divide(7, 2)


async def test_extra_parameter_with_default_is_accepted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Scaled(LabImpl):
        async def divide(self, a: int, b: int, scale: int = 10) -> float:  # type: ignore[override]
            return a / b * scale

    assert await serve_and_divide(Scaled()) == 35.0


async def test_catch_alls_are_accepted(autojump_clock: trio.testing.MockClock) -> None:
    class CatchAll(LabImpl):
        async def divide(self, *args: int, **kwargs: int) -> float:  # type: ignore[override]
            return args[0] / args[1] + len(kwargs)

    class Trailing(LabImpl):
        async def divide(self, a: int, *rest: int) -> float:  # type: ignore[override]
            return a / rest[0] + 1

    assert await serve_and_divide(CatchAll()) == 3.5
    assert await serve_and_divide(Trailing()) == 4.5


class AsyncDivider:
    """An object whose ``__call__`` is ``async def``: a coroutine function in all but type."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    async def __call__(self, a: int, b: int) -> float:
        return a / b + self.offset


async def _divide(offset: float, a: int, b: int) -> float:
    return a / b + offset


async def test_async_callable_object_and_partial_are_accepted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class ByObject(LabImpl):
        divide = AsyncDivider(100.0)  # type: ignore[assignment]

    class ByPartial(LabImpl):
        def __init__(self) -> None:
            super().__init__()
            self.divide = functools.partial(_divide, 1000.0)  # type: ignore[method-assign]

    assert await serve_and_divide(ByObject()) == 103.5
    assert await serve_and_divide(ByPartial()) == 1003.5


def test_plain_callable_object_is_refused() -> None:
    class PlainDivider:
        def __call__(self, a: int, b: int) -> float:
            return a / b

    class ByObject(LabImpl):
        divide = PlainDivider()  # type: ignore[assignment]

    assert "ByObject.divide(): is not a coroutine function" in refusal(ByObject())


async def test_valid_handlers_are_accepted_and_callable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab() as (_, _, client):
        lab = LabClient(client)
        assert await lab.divide(7, 2) == 3.5
        assert await lab.bump("k") == 1
        assert await lab.color(Color.RED) is Color.BLUE
        assert await lab.maybe(None) == "absent"
        assert await LabV1Client(client).legacy() == "v1"


# A service whose parameters are Python keywords or generated names: rpcgen escapes them.
_ESCAPED = rpc.MethodSpec[str](
    name="escaped", number=1, result=schema.STRING,
    params=(rpc.Param(1, "class", schema.STRING), rpc.Param(2, "timeout", schema.STRING)),
)
ESCAPED_V1 = rpc.ServiceSpec(name="Escaped", version=1, methods=(_ESCAPED,))


class EscapedHandler(rpc.Handler):
    """In the shape rpcgen emits for ``string escaped(1: string class, 2: string timeout)``."""

    SERVICE: ClassVar[rpc.ServiceSpec] = ESCAPED_V1

    @abc.abstractmethod
    async def escaped(self, class_: str, timeout_: str) -> str: ...


async def test_escaped_names_of_the_generated_handler_are_expected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Good(EscapedHandler):
        async def escaped(self, class_: str, timeout_: str) -> str:
            return class_ + timeout_

    class Doubled(EscapedHandler):
        async def escaped(self, class__: str, timeout_: str) -> str:  # type: ignore[override]
            return class__ + timeout_

    assert "parameter 1 is 'class__', the IDL's is 'class_'" in refusal(Doubled())
    net = SimNetwork(3)
    async with sim_server(net, [Good()]), rpc.connect(*SERVER_ADDR, socket=net.socket()) as client:
        assert await client.call(ESCAPED_V1, _ESCAPED, ("a", "b")) == "ab"


def test_handlers_not_derived_from_generated_code_may_escape_idl_names() -> None:
    class Escaped(rpc.Handler):
        SERVICE = ESCAPED_V1

        async def escaped(self, class_: str, timeout: str) -> str:
            return class_ + timeout

    class Wrong(Escaped):
        async def escaped(self, klass: str, timeout: str) -> str:  # type: ignore[override]
            return klass + timeout

    rpc.Server([Escaped(), LabV1Impl()])
    assert "parameter 1 is 'klass', the IDL's is 'class'" in refusal(Wrong())
