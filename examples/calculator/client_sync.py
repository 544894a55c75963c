"""A blocking calculator client: ``python -m examples.calculator.client_sync [--port 7000]``."""

from __future__ import annotations

import sys

import rpc
from examples._support import client_arguments, load_stubs, report_failure

calc = load_stubs("calculator")


def main(host: str, port: int, timeout: float) -> int:
    """Make a few calls with no event loop at all, and print the results."""
    with rpc.SyncClient(host, port) as connection:
        calculator = calc.CalculatorSyncClient(connection)
        print("6 * 7 =", calculator.multiply(6, 7, timeout=timeout))
        step = calc.Step(operation=calc.Operation.MULTIPLY, left=6, right=7, result=42)
        print("steps recorded:", calculator.record(step, timeout=timeout))
        print("history:", calculator.history(10, timeout=timeout))
        calculator.reset(timeout=timeout)  # oneway: returns once the server has the call
        print("calls served:", calculator.stats(timeout=timeout).calls)
    return 0


if __name__ == "__main__":
    args = client_arguments("Call the calculator server (blocking client).", 7000).parse_args()
    try:
        sys.exit(main(args.host, args.port, args.timeout))
    except rpc.RpcError as exc:
        sys.exit(report_failure(exc))
