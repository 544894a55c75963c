"""End to end through stubs that rpcgen generates from examples/calculator/calculator.idl."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

import rpc
from rpc.testing import SimNetwork
from tests.runtime.harness import SERVER_ADDR, sim_server

IDL = Path(__file__).resolve().parents[2] / "examples" / "calculator" / "calculator.idl"


@pytest.fixture(scope="module")
def calculator(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The generated calculator module, imported from a temporary directory."""
    out = tmp_path_factory.mktemp("generated")
    subprocess.run(
        [sys.executable, "-m", "codegen.cli", str(IDL), "-o", str(out)], check=True
    )
    spec = importlib.util.spec_from_file_location("generated_calculator", out / "calculator.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_handler(calc: ModuleType) -> Any:
    """A calculator implementation on top of the generated handler base."""

    class Calculator(calc.CalculatorHandler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.steps: list[Any] = []
            self.calls = 0
            self.resets = 0

        async def add(self, a: int, b: int) -> int:
            self.calls += 1
            return a + b

        async def subtract(self, a: int, b: int) -> int:
            return a - b

        async def multiply(self, a: int, b: int) -> int:
            return a * b

        async def divide(self, a: int, b: int) -> float:
            if b == 0:
                raise calc.DivideByZero(dividend=a)
            return a / b

        async def record(self, step: Any) -> int:
            self.steps.append(step)
            return len(self.steps)

        async def history(self, limit: int) -> Sequence[Any]:
            return self.steps[-limit:]

        async def stats(self) -> Any:
            by_op: dict[Any, int] = {}
            for step in self.steps:
                by_op[step.operation] = by_op.get(step.operation, 0) + 1
            return calc.Stats(calls=self.calls, by_operation=by_op, recent=self.steps[-3:])

        async def reset(self) -> None:
            self.resets += 1
            self.steps.clear()

    return Calculator()


async def test_generated_async_client_and_handler(
    calculator: ModuleType, autojump_clock: trio.testing.MockClock
) -> None:
    calc = calculator
    impl = make_handler(calc)
    net = SimNetwork(21)
    step = calc.Step(operation=calc.Operation.ADD, left=1, right=2, result=3, note="n")
    async with sim_server(net, [impl]), rpc.connect(*SERVER_ADDR, socket=net.socket()) as conn:
        client = calc.CalculatorClient(conn)
        assert await client.add(2, 3, timeout=1.0) == 5
        assert await client.subtract(2, 3) == -1
        assert await client.divide(7, 2) == 3.5
        with pytest.raises(calc.DivideByZero) as info:
            await client.divide(7, 0)
        assert info.value.dividend == 7
        assert await client.record(step) == 1
        assert await client.history(10) == [step]
        stats = await client.stats()
        assert stats == calc.Stats(calls=1, by_operation={calc.Operation.ADD: 1}, recent=[step])
        await client.reset()
        for _ in range(100):
            if impl.resets:
                break
            await trio.sleep(0.001)
        with pytest.raises(rpc.InvalidArgument) as bad:
            await client.record(calc.Step(operation=calc.Operation.ADD, left=1, right=2,
                                          result=3, note="x" * 65))
    assert impl.resets == 1
    assert impl.steps == []
    assert "record(step).note" in bad.value.message


@pytest.mark.realnet
async def test_generated_sync_client_against_trio_server(calculator: ModuleType) -> None:
    calc = calculator
    impl = make_handler(calc)

    def script(port: int) -> list[object]:
        with rpc.SyncClient("127.0.0.1", port) as conn:
            client = calc.CalculatorSyncClient(conn)
            results: list[object] = [client.add(40, 2, timeout=10.0)]
            try:
                client.divide(1, 0, timeout=10.0)
            except calc.DivideByZero as exc:
                results.append(exc.dividend)
            results.append(client.multiply(6, 7, timeout=10.0))
            return results

    async with rpc.Server([impl]) as server:
        results = await trio.to_thread.run_sync(script, server.address[1])
    assert results == [42, 1, 42]
