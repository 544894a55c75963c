"""The demo against a calculator that is wrong once: the demo must notice and exit 1."""

from __future__ import annotations

import sys

from examples import demo
from examples._support import run
from examples.calculator.server import Calculator


class OffByOneOnce(Calculator):
    """Returns a wrong sum for the first ``add`` call only."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    async def add(self, a: int, b: int) -> int:
        result = await super().add(a, b)
        if self.broken:
            self.broken = False
            return result + 1
        return result


if __name__ == "__main__":
    sys.exit(run(demo.demo, 40, 1, OffByOneOnce()))
