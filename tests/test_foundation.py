"""Smoke tests of the project's floor: the packages import and their error hierarchy holds."""

from __future__ import annotations

import subprocess
import sys

import trio

import rpc
from rpc.errors import CallOutcome


def test_every_public_error_is_an_rpc_error() -> None:
    for name in rpc.__all__:
        obj = getattr(rpc, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, rpc.RpcError), name


def test_outcomes_say_whether_retry_is_safe() -> None:
    assert rpc.ClientClosed().safe_to_retry
    assert rpc.UnknownMethod("x").outcome is CallOutcome.NOT_EXECUTED
    assert not rpc.DeadlineExceeded("late").safe_to_retry
    assert not rpc.RemoteError("ValueError", "boom").safe_to_retry
    err = rpc.InvalidArgument("bad", outcome=CallOutcome.NOT_DELIVERED)
    assert err.outcome is CallOutcome.NOT_DELIVERED


def test_rpcgen_help_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "codegen.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "rpcgen" in proc.stdout


async def test_autojump_clock_makes_sleep_instant(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    await trio.sleep(3600)
    assert trio.current_time() - start >= 3600
