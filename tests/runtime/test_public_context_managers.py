"""Errors raised inside the public ``async with`` blocks come out as themselves, not in groups."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

import rpc
from rpc.drivers._nursery import sole_error
from rpc.testing import SimNetwork, simulated_service
from rpc.testing.chaos_proxy import ChaosProxy
from tests.runtime.harness import SERVER_ADDR, LabImpl


class Boom(Exception):
    """A user's own exception."""


def _sim_client() -> contextlib.AbstractAsyncContextManager[Any]:
    sock = SimNetwork(0).socket(("10.0.0.2", 5000))
    return rpc.connect(*SERVER_ADDR, socket=sock)


def _sim_server() -> contextlib.AbstractAsyncContextManager[Any]:
    return rpc.Server([LabImpl()], socket=SimNetwork(0).socket(SERVER_ADDR))


def _simulated() -> contextlib.AbstractAsyncContextManager[Any]:
    return simulated_service([LabImpl()])


def _proxy() -> contextlib.AbstractAsyncContextManager[Any]:
    return ChaosProxy(("127.0.0.1", 9))


MANAGERS: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = {
    "connect": _sim_client,
    "server": _sim_server,
    "simulated_service": _simulated,
    "chaos_proxy": _proxy,
}


@pytest.mark.parametrize("name", sorted(MANAGERS))
@pytest.mark.parametrize("error", [Boom("mine"), rpc.DeadlineExceeded("late")])
async def test_body_error_escapes_unwrapped(name: str, error: Exception) -> None:
    with pytest.raises(type(error)) as caught:
        async with MANAGERS[name]():
            raise error
    assert caught.value is error
    assert not isinstance(caught.value.__context__, BaseExceptionGroup)


@pytest.mark.parametrize("name", sorted(MANAGERS))
async def test_outer_cancellation_passes_through(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.move_on_after(1.0) as scope:
        async with MANAGERS[name]():
            await trio.sleep_forever()
    assert scope.cancelled_caught


def test_several_real_errors_stay_a_group() -> None:
    group = ExceptionGroup("two", [Boom("a"), ValueError("b")])
    assert sole_error(group) is None


def test_nested_single_error_is_found() -> None:
    inner = Boom("deep")
    group = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [inner])])
    assert sole_error(group) is inner
