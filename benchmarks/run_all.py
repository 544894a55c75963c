"""Run every benchmark side by side on 127.0.0.1 and print one table with ratios and targets.

    python benchmarks/run_all.py            # a few minutes
    python benchmarks/run_all.py --quick    # a second or two per section

Each suite runs as its own client process, and each client starts its server (and, for the
loss sections, a chaos proxy) as further processes, so no two measured parties share an
interpreter. Every figure is printed with its ratio to the raw trio UDP ping-pong (the physical
limit for a trio program) and to the matching gRPC figure, then the targets of issue 7 are
checked and reported as PASS or MISS.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

import _common as c

#: A whole suite gets at most this long before it is killed and reported as failed (seconds).
SUITE_TIMEOUT = {"quick": 240.0, "default": 900.0}


@dataclasses.dataclass(frozen=True)
class Suite:
    """One benchmark script run as a client subprocess."""

    label: str
    script: str
    args: tuple[str, ...]
    systems: tuple[str, ...]  # systems it reports, used to label a failed suite


SUITES = (
    Suite("raw UDP ping-pong", "raw_pingpong.py", (), ("raw-blocking", "raw-trio")),
    Suite("grpcio sync", "bench_grpc.py", ("--mode", "sync"), ("grpc-sync",)),
    Suite("grpcio aio", "bench_grpc.py", ("--mode", "aio"), ("grpc-aio",)),
    Suite("udprpc transport", "bench_transport.py", (), ("udprpc-transport",)),
    Suite("udprpc async", "bench_udprpc.py", ("--client", "async"), ("udprpc-async",)),
    Suite("udprpc sync", "bench_udprpc.py", ("--client", "sync"), ("udprpc-sync",)),
)

#: The gRPC figure each system is compared with (same workload).
GRPC_BASELINE = {
    "udprpc-transport": "grpc-aio",
    "udprpc-async": "grpc-aio",
    "udprpc-sync": "grpc-sync",
    "raw-trio": "grpc-aio",
    "raw-blocking": "grpc-sync",
}
RAW_TRIO = "raw-trio"
SMALL_WORKLOAD = "seq16"


class Figures:
    """All results of a run, looked up by (system, workload)."""

    def __init__(self, results: Sequence[c.Result]) -> None:
        self.results = list(results)
        self._by_key = {(r.system, r.workload): r for r in results if r.calls > 0}

    def get(self, system: str, workload: str) -> c.Result | None:
        """The measured result, or None if it was not measured."""
        return self._by_key.get((system, workload))

    def rate_ratio(self, result: c.Result, system: str, workload: str) -> float:
        """``result``'s calls/s over another figure's calls/s (NaN when absent)."""
        other = self.get(system, workload)
        if other is None or result.calls == 0:
            return math.nan
        return result.calls_per_s / other.calls_per_s

    def raw_ratio(self, result: c.Result) -> float:
        """Ratio to the raw trio ping-pong: same workload if it was measured, else small calls.

        Small-call workloads (sequential, in flight, under loss) compare with the small
        ping-pong; payload workloads only with a raw figure of the same payload.
        """
        if result.system == RAW_TRIO:
            return math.nan
        if self.get(RAW_TRIO, result.workload) is not None:
            return self.rate_ratio(result, RAW_TRIO, result.workload)
        if result.payload <= len(c.SMALL_PAYLOAD):
            return self.rate_ratio(result, RAW_TRIO, SMALL_WORKLOAD)
        return math.nan

    def grpc_ratio(self, result: c.Result) -> float:
        """Ratio to the matching gRPC figure of the same workload."""
        baseline = GRPC_BASELINE.get(result.system)
        return math.nan if baseline is None else self.rate_ratio(result, baseline, result.workload)


# --------------------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class Target:
    """One target of issue 7: a figure compared with another figure or with a bound."""

    text: str
    check: Callable[[Figures], tuple[bool | None, str]]  # (passed or None if unmeasurable, detail)


def _ratio_target(system: str, workload: str, base: str, base_workload: str, want: float) -> Target:
    def check(figures: Figures) -> tuple[bool | None, str]:
        mine = figures.get(system, workload)
        if mine is None or figures.get(base, base_workload) is None:
            return None, "not measured"
        ratio = figures.rate_ratio(mine, base, base_workload)
        return ratio >= want, f"{ratio:.2f}x (want >= {want}x)"

    text = f"{system} {workload} >= {want}x {base} {base_workload}"
    return Target(text, check)


def _p99_target(system: str, workload: str, bound_ms: float) -> Target:
    def check(figures: Figures) -> tuple[bool | None, str]:
        mine = figures.get(system, workload)
        if mine is None:
            return None, "not measured"
        return mine.p99_ms < bound_ms, f"p99 {mine.p99_ms:.2f} ms (want < {bound_ms} ms)"

    return Target(f"{system} {workload} p99 < {bound_ms} ms", check)


def _mbps_target(system: str, workload: str, floor: float) -> Target:
    def check(figures: Figures) -> tuple[bool | None, str]:
        mine = figures.get(system, workload)
        if mine is None:
            return None, "not measured"
        return mine.mb_per_s >= floor, f"{mine.mb_per_s:.0f} MB/s (want >= {floor:.0f} MB/s)"

    return Target(f"{system} {workload} >= {floor:.0f} MB/s", check)


TARGETS = (
    _ratio_target("udprpc-async", "seq16", "raw-trio", "seq16", 0.6),
    _ratio_target("udprpc-async", "seq16", "grpc-aio", "seq16", 4.0),
    _ratio_target("udprpc-sync", "seq16", "grpc-sync", "seq16", 3.0),
    _ratio_target("udprpc-async", "inflight32", "grpc-aio", "inflight32", 3.0),
    _ratio_target("udprpc-async", "1MiB", "grpc-sync", "1MiB", 0.75),
    _ratio_target("udprpc-sync", "1MiB", "grpc-sync", "1MiB", 0.75),
    _p99_target("udprpc-async", "loss5%", 25.0),
    _p99_target("udprpc-sync", "loss5%", 25.0),
    # Issue 4: round trips within 1.5x the raw trio latency, i.e. at least 1/1.5 of its rate.
    _ratio_target("udprpc-transport", "seq16", "raw-trio", "seq16", round(1 / 1.5, 2)),
    _mbps_target("udprpc-transport", "1MiB", 300.0),
)


# --------------------------------------------------------------------------- running


def run_suite(suite: Suite, profile: c.Profile) -> list[c.Result]:
    """Run one suite's client process; a suite that fails yields skipped rows saying why."""
    if not (c.BENCH_DIR / suite.script).exists():
        return [c.Result.skipped(s, "-", f"{suite.script} not found") for s in suite.systems]
    flags = ["--json", *(["--quick"] if profile is c.QUICK else [])]
    argv = c.python_command(suite.script, *suite.args, *flags)
    c.progress(f"\n### {suite.label}: {' '.join(argv[1:])}")
    results, error = c.run_child(argv, SUITE_TIMEOUT[profile.name])
    if error:
        c.progress(f"### {suite.label} FAILED: {error}")
        return [c.Result.skipped(s, "-", error) for s in suite.systems]
    return results


def median_of_rounds(rounds: Sequence[Sequence[c.Result]]) -> list[c.Result]:
    """Per (system, workload), the round whose calls/s is the median; first-seen order.

    Repeating the suites in turn and keeping the median evens out a machine whose load changes
    during the run, and keeps a single lucky or unlucky round from deciding a target.
    """
    groups: dict[tuple[str, str], list[c.Result]] = {}
    for results in rounds:
        for r in results:
            groups.setdefault((r.system, r.workload), []).append(r)
    combined = []
    for group in groups.values():
        measured = sorted((r for r in group if r.calls > 0), key=lambda r: r.calls_per_s)
        combined.append(measured[(len(measured) - 1) // 2] if measured else group[0])
    return combined


def ratio_text(value: float) -> str:
    """A ratio column cell."""
    return "-" if math.isnan(value) else f"{value:.2f}x"


def load_text() -> str:
    """The 1-minute load average with the CPU count: a busy machine makes every figure worse."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def print_report(
    figures: Figures, profile: c.Profile, seconds: float, load_before: str, rounds: int
) -> None:
    """The combined table, then the targets."""
    print(f"\nudprpc benchmarks ({profile.name} run, {seconds:.0f} s) on 127.0.0.1")
    if rounds > 1:
        print(f"each figure is the median of {rounds} rounds (by calls/s)")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"{load_before} before the run, {load_text()} after it")
    headers = (*c.RESULT_HEADERS, "x raw trio", "x gRPC")
    rows = [
        [*c.result_row(r), ratio_text(figures.raw_ratio(r)), ratio_text(figures.grpc_ratio(r))]
        for r in figures.results
    ]
    print()
    c.print_table(headers, rows)
    c.print_notes(figures.results)
    print("\nx raw trio: calls/s over the raw trio ping-pong (16 B) or the same payload; "
          "x gRPC: over grpcio aio (async, raw) or grpcio sync (sync, blocking), same workload.")
    print("MB/s counts the request payload once per call (an echo moves as much again back).")
    print("\nTargets (issue 7; the last two are issue 4's, for the transport alone):")
    for target in TARGETS:
        passed, detail = target.check(figures)
        verdict = {True: "PASS", False: "MISS", None: "N/A "}[passed]
        print(f"  {verdict}  {target.text}: {detail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run all suites, print the report."""
    parser = c.base_parser("Run every benchmark and print one table with ratios and targets.")
    parser.add_argument(
        "--rounds", type=int, default=1, metavar="N",
        help="run every suite N times in turn and report each figure's median round",
    )
    parser.add_argument(
        "--only", nargs="*", metavar="SCRIPT", help="run only these scripts (e.g. bench_grpc.py)"
    )
    args = parser.parse_args(argv)
    profile = c.profile_from_args(args)
    started = time.perf_counter()
    load_before = load_text()
    suites = [s for s in SUITES if not args.only or s.script in args.only]
    rounds = []
    for number in range(1, max(1, args.rounds) + 1):
        c.progress(f"\n##### round {number} of {args.rounds}")
        rounds.append([r for suite in suites for r in run_suite(suite, profile)])
    results = median_of_rounds(rounds)
    print_report(Figures(results), profile, time.perf_counter() - started, load_before, args.rounds)
    if args.json:
        c.emit_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
