"""An async calculator client: ``python -m examples.calculator.client_async [--port 7000]``."""

from __future__ import annotations

import sys
from typing import Any

import trio

import rpc
from examples._support import client_arguments, load_stubs, report_failure

calc = load_stubs("calculator")


async def show(calculator: Any, connection: rpc.Client, timeout: float) -> None:
    """Make a few calls, some of them at once, and print the results."""
    print("2 + 3 =", await calculator.add(2, 3, timeout=timeout))
    print("7 / 2 =", await calculator.divide(7, 2, timeout=timeout))
    try:
        await calculator.divide(1, 0, timeout=timeout)
    except calc.DivideByZero as exc:
        print(f"1 / 0 raised DivideByZero(dividend={exc.dividend}), {exc.outcome.value}")

    squares: dict[int, int] = {}

    async def square(n: int) -> None:
        squares[n] = await calculator.multiply(n, n, timeout=timeout)

    async with trio.open_nursery() as nursery:  # ten calls in flight at once
        for n in range(10):
            nursery.start_soon(square, n)
    print("squares:", [squares[n] for n in range(10)])
    print(f"ping: {await connection.ping(timeout=timeout) * 1e3:.2f} ms")


async def main(host: str, port: int, timeout: float) -> int:
    """Connect and run :func:`show`; a failed call ends the program with status 1."""
    async with rpc.connect(host, port) as connection:
        try:
            await show(calc.CalculatorClient(connection), connection, timeout)
        except rpc.RpcError as exc:
            return report_failure(exc)
    return 0


if __name__ == "__main__":
    args = client_arguments("Call the calculator server (async client).", 7000).parse_args()
    sys.exit(trio.run(main, args.host, args.port, args.timeout))
