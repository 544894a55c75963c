"""An async calculator client: ``python -m examples.calculator.client_async [--port 7000]``."""

from __future__ import annotations

import sys

import trio

import rpc
from examples._support import load_stubs, port_argument

calc = load_stubs("calculator")


async def main(host: str, port: int) -> int:
    """Make a few calls, some of them at once, and print the results."""
    async with rpc.connect(host, port) as connection:
        calculator = calc.CalculatorClient(connection)
        print("2 + 3 =", await calculator.add(2, 3, timeout=5.0))
        print("7 / 2 =", await calculator.divide(7, 2, timeout=5.0))
        try:
            await calculator.divide(1, 0, timeout=5.0)
        except calc.DivideByZero as exc:
            print(f"1 / 0 raised DivideByZero(dividend={exc.dividend}), {exc.outcome.value}")

        squares: dict[int, int] = {}

        async def square(n: int) -> None:
            squares[n] = await calculator.multiply(n, n, timeout=5.0)

        async with trio.open_nursery() as nursery:  # ten calls in flight at once
            for n in range(10):
                nursery.start_soon(square, n)
        print("squares:", [squares[n] for n in range(10)])
        print(f"ping: {await connection.ping(timeout=5.0) * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    args = port_argument("Call the calculator server (async client).", 7000).parse_args()
    sys.exit(trio.run(main, args.host, args.port))
