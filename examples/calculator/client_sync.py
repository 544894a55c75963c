"""A blocking calculator client: ``python -m examples.calculator.client_sync [--port 7000]``."""

from __future__ import annotations

import sys

import rpc
from examples._support import load_stubs, port_argument

calc = load_stubs("calculator")


def main(host: str, port: int) -> int:
    """Make a few calls with no event loop at all, and print the results."""
    with rpc.SyncClient(host, port) as connection:
        calculator = calc.CalculatorSyncClient(connection)
        print("6 * 7 =", calculator.multiply(6, 7, timeout=5.0))
        step = calc.Step(operation=calc.Operation.MULTIPLY, left=6, right=7, result=42)
        print("steps recorded:", calculator.record(step, timeout=5.0))
        print("history:", calculator.history(10, timeout=5.0))
        calculator.reset(timeout=5.0)  # oneway: returns once the server has the call
        print("calls served:", calculator.stats(timeout=5.0).calls)
    return 0


if __name__ == "__main__":
    args = port_argument("Call the calculator server (blocking client).", 7000).parse_args()
    sys.exit(main(args.host, args.port))
