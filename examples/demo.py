"""The demo behind ``bash scripts/demo.sh``: real calls over UDP, clean and then through chaos.

It generates the calculator's stubs with ``rpcgen``, serves the calculator on 127.0.0.1, and runs
the same verified workload twice: straight to the server, then through a chaos proxy that loses,
duplicates and corrupts datagrams in both directions. It prints what each side counted and exits
0 only if every call returned exactly the right result.

``python -m examples.demo [--calls N] [--quick] [--seed S]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import trio

import rpc
from examples._report import PhaseReport, counters_between, print_phase
from examples._support import load_stubs, run
from examples.calculator.server import Calculator
from rpc.testing import LinkFaults
from rpc.testing.chaos_proxy import ChaosProxy

calc = load_stubs("calculator")

#: The faults of the second phase, in each direction.
CHAOS = LinkFaults(loss=0.10, duplicate=0.05, corrupt=0.05)
#: Calls kept in flight at once by the first part of each phase.
CONCURRENCY = 8
#: The last calls of each phase go one at a time, so their latency is a round trip, not a queue.
SEQUENTIAL_FRACTION = 0.2
#: Every call's deadline: generous, so a failure means a bug, not a slow machine.
CALL_TIMEOUT = 10.0
#: The whole demo's bound; it normally takes a few seconds.
DEMO_TIMEOUT = 50.0
#: Exit status of an interrupted demo (128 + SIGINT, as shells report it).
INTERRUPTED = 130
#: One call in this many is a non-idempotent ``record`` (at-most-once shows in its counts).
RECORD_EVERY = 4

EXPECTED = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
}


@dataclass
class Workload:
    """A seeded list of calls, and what came back."""

    jobs: list[tuple[str, int, int]]
    latencies: list[float] = field(default_factory=list)  # of the sequential calls only
    measuring: bool = False
    wrong: list[str] = field(default_factory=list)
    record_counts: list[int] = field(default_factory=list)

    @classmethod
    def make(cls, calls: int, seed: int) -> Workload:
        """``calls`` calls: arithmetic (some dividing by zero) and ``record``."""
        rng = random.Random(seed)
        jobs = []
        for i in range(calls):
            op = "record" if i % RECORD_EVERY == 0 else rng.choice(list(EXPECTED))
            b = 0 if op == "divide" and rng.random() < 0.1 else rng.randint(-1000, 1000) or 1
            jobs.append((op, rng.randint(-10**9, 10**9), b))
        return cls(jobs)


async def one_call(calculator: object, job: tuple[str, int, int], work: Workload) -> None:
    """Make one call, check its result, record its latency."""
    op, a, b = job
    method = getattr(calculator, op)
    start = time.perf_counter()
    try:
        if op == "record":
            step = calc.Step(operation=calc.Operation.ADD, left=a, right=b, result=a + b)
            work.record_counts.append(await method(step, timeout=CALL_TIMEOUT))
        else:
            got = await method(a, b, timeout=CALL_TIMEOUT)
            if got != EXPECTED[op](a, b):
                work.wrong.append(f"{op}({a}, {b}) returned {got!r}")
    except calc.DivideByZero as exc:
        if b != 0 or exc.dividend != a:
            work.wrong.append(f"{op}({a}, {b}) raised DivideByZero({exc.dividend})")
    except rpc.RpcError as exc:
        work.wrong.append(f"{op}({a}, {b}) failed: {type(exc).__name__}: {exc}")
    if work.measuring:
        work.latencies.append(time.perf_counter() - start)


def split(work: Workload) -> int:
    """How many of the jobs run concurrently (the rest run one at a time)."""
    return len(work.jobs) - int(len(work.jobs) * SEQUENTIAL_FRACTION)


async def run_workload(client: rpc.Client, work: Workload) -> None:
    """The first jobs with ``CONCURRENCY`` calls in flight, then the rest one at a time."""
    calculator = calc.CalculatorClient(client)
    concurrent: Iterator[tuple[str, int, int]] = iter(work.jobs[: split(work)])

    async def worker() -> None:
        for job in concurrent:  # trio switches tasks only at awaits: sharing it is safe
            await one_call(calculator, job, work)

    async with trio.open_nursery() as nursery:
        for _ in range(CONCURRENCY):
            nursery.start_soon(worker)
    work.measuring = True
    for job in work.jobs[split(work) :]:
        await one_call(calculator, job, work)


def check_records(work: Workload, first: int) -> None:
    """At-most-once: the n record calls must have returned exactly first+1 .. first+n."""
    expected = list(range(first + 1, first + 1 + len(work.record_counts)))
    if sorted(work.record_counts) != expected:
        work.wrong.append(
            f"record() counts are not {first + 1}..{first + len(expected)}: a call ran twice "
            "or not at all"
        )


async def phase(
    title: str, server: rpc.Server, impl: Calculator, work: Workload, proxy: ChaosProxy | None
) -> PhaseReport:
    """Run ``work`` against the server, directly or through ``proxy``; return what happened."""
    host, port = proxy.address if proxy is not None else server.address
    server_before = server.statistics()
    first_record = impl.recorded
    started = time.perf_counter()
    async with rpc.connect(host, port) as client:
        await run_workload(client, work)
        client_stats = client.statistics()
    check_records(work, first_record)
    return PhaseReport(
        title=title,
        calls=len(work.jobs),
        in_flight=CONCURRENCY,
        concurrent_calls=split(work),
        executed_records=impl.recorded - first_record,
        seconds=time.perf_counter() - started,
        latencies=sorted(work.latencies),
        wrong=work.wrong,
        record_counts=len(work.record_counts),
        client=client_stats,
        server=counters_between(server_before, server.statistics()),
        proxy=proxy.statistics() if proxy is not None else None,
    )


async def demo(calls: int, seed: int, impl: Calculator | None = None) -> int:
    """Serve ``impl``, run both phases, print the report; 0 when every result was right."""
    impl = impl if impl is not None else Calculator()
    reports = []
    with trio.fail_after(DEMO_TIMEOUT):
        async with rpc.Server([impl], host="127.0.0.1", port=0) as server:
            print(f"server: calculator on udp://{server.address[0]}:{server.address[1]}")
            clean = Workload.make(calls, seed)
            reports.append(await phase("1. clean network", server, impl, clean, None))
            print_phase(reports[-1])
            async with ChaosProxy(server.address, CHAOS, CHAOS, seed=seed) as proxy:
                print(f"chaos proxy: udp://{proxy.address[0]}:{proxy.address[1]} -> server, "
                      f"each way: {CHAOS.loss:.0%} loss, {CHAOS.duplicate:.0%} duplication, "
                      f"{CHAOS.corrupt:.0%} corruption")
                chaos = Workload.make(calls, seed + 1)
                reports.append(await phase("2. through the chaos proxy", server, impl, chaos,
                                           proxy))
            print_phase(reports[-1])
    wrong = sum(len(r.wrong) for r in reports)
    total = sum(r.calls for r in reports)
    if wrong:
        print(f"\nFAILED: {wrong} of {total} calls went wrong")
        return 1
    print(f"\nOK: all {total} results verified; every record() ran exactly once.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000, help="calls per phase")
    parser.add_argument("--quick", action="store_true", help="200 calls per phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print("stubs: generated by rpcgen examples/calculator/calculator.idl "
          "-o examples/calculator/generated")
    return run(demo, 200 if args.quick else args.calls, args.seed, interrupted=INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
