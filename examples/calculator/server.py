"""The calculator server: ``python -m examples.calculator.server [--port 7000]``."""

from __future__ import annotations

import collections
import sys

import rpc
from examples._support import load_stubs, port_argument

calc = load_stubs("calculator")


class Calculator(calc.CalculatorHandler):  # type: ignore[misc,name-defined]
    """Arithmetic, plus a bounded history of recorded steps."""

    def __init__(self) -> None:
        self.calls = 0
        self.by_operation: collections.Counter[int] = collections.Counter()
        self.steps: collections.deque[object] = collections.deque(maxlen=calc.MAX_HISTORY)
        self.recorded = 0  # steps recorded since the last reset (the history keeps the newest)

    def _count(self, operation: int) -> None:
        self.calls += 1
        self.by_operation[operation] += 1

    async def add(self, a: int, b: int) -> int:
        self._count(calc.Operation.ADD)
        return a + b

    async def subtract(self, a: int, b: int) -> int:
        self._count(calc.Operation.SUBTRACT)
        return a - b

    async def multiply(self, a: int, b: int) -> int:
        self._count(calc.Operation.MULTIPLY)
        return a * b

    async def divide(self, a: int, b: int) -> float:
        self._count(calc.Operation.DIVIDE)
        if b == 0:
            raise calc.DivideByZero(dividend=a)
        return a / b

    async def record(self, step: object) -> int:
        self.steps.append(step)
        self.recorded += 1
        return self.recorded

    async def history(self, limit: int) -> list[object]:
        return list(self.steps)[-limit:] if limit > 0 else []

    async def stats(self) -> object:
        return calc.Stats(
            calls=self.calls, by_operation=dict(self.by_operation), recent=list(self.steps)
        )

    async def reset(self) -> None:
        self.steps.clear()
        self.recorded = 0


def main() -> int:
    """Serve the calculator until Ctrl-C or SIGTERM; running calls finish first."""
    args = port_argument("Serve the calculator over UDP.", 7000).parse_args()
    rpc.run_server(
        [Calculator()], host=args.host, port=args.port,
        ready=lambda address: print(
            f"calculator server listening on {address[0]}:{address[1]}", flush=True
        ),
    )
    print("calculator server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
