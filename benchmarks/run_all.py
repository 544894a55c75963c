"""Run every benchmark side by side on 127.0.0.1 and print one table with ratios and targets.

    python benchmarks/run_all.py            # a few minutes
    python benchmarks/run_all.py --quick    # a second or two per section

Each suite runs as its own client process, and each client starts its server (and, for the
loss sections, a chaos proxy) as further processes, so no two measured parties share an
interpreter. Every figure is printed with its ratio to the raw trio UDP ping-pong (the physical
limit for a trio program) and to the matching gRPC figure, then the performance targets are
checked and reported as PASS or MISS.

After the rounds, ``paired.py`` measures the sequential small calls once more, each short
section right after a raw trio section (9 pairs per system, 3 per round beyond three rounds):
the machine's speed drifts within minutes, and a ratio of figures measured minutes apart
partly measures that drift. Its rows are the median pairs (workload ``pair:<system>``), and the
ratio-to-raw-trio targets are judged both ways.
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

from rpc._accel import compiled_core

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
    # What busy-polling buys, and costs in CPU: the sequential small calls without it.
    Suite(
        "udprpc, no busy-polling",
        "bench_udprpc.py",
        ("--client", "both", "--busy-poll", "0", "--workloads", "seq16"),
        ("udprpc-async-poll0us", "udprpc-sync-poll0us"),
    ),
)

#: The gRPC figure each system is compared with (same workload).
GRPC_BASELINE = {
    "udprpc-transport": "grpc-aio",
    "udprpc-async": "grpc-aio",
    "udprpc-sync": "grpc-sync",
    "udprpc-async-poll0us": "grpc-aio",
    "udprpc-sync-poll0us": "grpc-sync",
    "raw-trio": "grpc-aio",
    "raw-blocking": "grpc-sync",
}
RAW_TRIO = "raw-trio"
SMALL_WORKLOAD = "seq16"
#: Run once after the rounds, not per round: median_of_rounds would unpair its rows.
PAIRED = Suite(
    "sequential calls paired with raw trio",
    "paired.py",
    (),
    ("udprpc-async", "udprpc-sync", "udprpc-async-poll0us", "udprpc-transport"),
)
#: Pairs per system when run_all runs paired.py (at least this; 3 per round beyond it).
PAIRED_MIN_PAIRS = 9


def measured_rate(result: c.Result) -> float:
    """Calls per second as measured (wall clock)."""
    return result.calls_per_s


def cpu_bound_rate(result: c.Result) -> float:
    """Calls per second that client + server CPU per call allow (see Result.cpu_bound_rate)."""
    return result.cpu_bound_rate


class Figures:
    """All results of a run, looked up by (system, workload), compared by one rate metric."""

    def __init__(
        self, results: Sequence[c.Result], rate: Callable[[c.Result], float] = measured_rate
    ) -> None:
        self.results = list(results)
        self.rate = rate
        self._by_key = {(r.system, r.workload): r for r in results if r.calls > 0}

    def mb_per_s(self, result: c.Result) -> float:
        """Request payload MB/s at this metric's rate."""
        return self.rate(result) * result.payload / 1e6

    def get(self, system: str, workload: str) -> c.Result | None:
        """The measured result, or None if it was not measured."""
        return self._by_key.get((system, workload))

    def rate_ratio(self, result: c.Result, system: str, workload: str) -> float:
        """``result``'s calls/s over another figure's calls/s (NaN when absent)."""
        other = self.get(system, workload)
        if other is None or result.calls == 0:
            return math.nan
        return self.rate(result) / self.rate(other)

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
    """One performance target: a figure compared with another figure or with a bound."""

    text: str
    check: Callable[[Figures], tuple[bool | None, str]]  # (passed or None if unmeasurable, detail)


def _ratio_target(system: str, workload: str, base: str, base_workload: str, want: float) -> Target:
    def check(figures: Figures) -> tuple[bool | None, str]:
        mine = figures.get(system, workload)
        if mine is None or figures.get(base, base_workload) is None:
            return None, "not measured"
        ratio = figures.rate_ratio(mine, base, base_workload)
        if math.isnan(ratio):
            return None, "not measured"
        return ratio >= want, f"{ratio:.2f}x (want >= {want}x)"

    text = f"{system} {workload} >= {want}x {base} {base_workload}"
    return Target(text, check)


def _p99_target(system: str, workload: str, bound_ms: float) -> Target:
    def check(figures: Figures) -> tuple[bool | None, str]:
        mine = figures.get(system, workload)
        if mine is None:
            return None, "not measured"
        if figures.rate is not measured_rate:
            return None, "a latency target: see the measured evaluation"
        return mine.p99_ms < bound_ms, f"p99 {mine.p99_ms:.2f} ms (want < {bound_ms} ms)"

    return Target(f"{system} {workload} p99 < {bound_ms} ms", check)


def _mbps_target(system: str, workload: str, floor: float) -> Target:
    def check(figures: Figures) -> tuple[bool | None, str]:
        mine = figures.get(system, workload)
        if mine is None:
            return None, "not measured"
        mbps = figures.mb_per_s(mine)
        if math.isnan(mbps):
            return None, "not measured"
        return mbps >= floor, f"{mbps:.0f} MB/s (want >= {floor:.0f} MB/s)"

    return Target(f"{system} {workload} >= {floor:.0f} MB/s", check)


TARGETS = (
    _ratio_target("udprpc-async", "seq16", "raw-trio", "seq16", 0.6),
    _ratio_target("udprpc-async", "pair:udprpc-async", "raw-trio", "pair:udprpc-async", 0.6),
    _ratio_target("udprpc-async", "seq16", "grpc-aio", "seq16", 4.0),
    _ratio_target("udprpc-sync", "seq16", "grpc-sync", "seq16", 3.0),
    _ratio_target("udprpc-async", "inflight32", "grpc-aio", "inflight32", 3.0),
    _ratio_target("udprpc-async", "1MiB", "grpc-sync", "1MiB", 0.75),
    _ratio_target("udprpc-sync", "1MiB", "grpc-sync", "1MiB", 0.75),
    _p99_target("udprpc-async", "loss5%", 25.0),
    _p99_target("udprpc-sync", "loss5%", 25.0),
    # The transport alone: round trips within 1.5x the raw trio latency, i.e. at least 1/1.5
    # of its rate.
    _ratio_target("udprpc-transport", "seq16", "raw-trio", "seq16", round(1 / 1.5, 2)),
    _ratio_target(
        "udprpc-transport", "pair:udprpc-transport", "raw-trio", "pair:udprpc-transport",
        round(1 / 1.5, 2),
    ),
    _mbps_target("udprpc-transport", "1MiB", 300.0),
)


# --------------------------------------------------------------------------- running


def run_suite(suite: Suite, profile: c.Profile, *extra: str) -> list[c.Result]:
    """Run one suite's client process; a suite that fails yields skipped rows saying why."""
    if not (c.BENCH_DIR / suite.script).exists():
        return [c.Result.skipped(s, "-", f"{suite.script} not found") for s in suite.systems]
    flags = ["--json", *(["--quick"] if profile is c.QUICK else [])]
    argv = c.python_command(suite.script, *suite.args, *extra, *flags)
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


def print_header(profile: c.Profile, seconds: float, load_before: str, rounds: int) -> None:
    """What ran, where, and how busy the machine was."""
    print(f"\nudprpc benchmarks ({profile.name} run, {seconds:.0f} s) on 127.0.0.1")
    if rounds > 1:
        print(f"each figure is the median of {rounds} rounds (by calls/s)")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    core = "compiled (mypyc)" if compiled_core() else "pure Python"
    print(f"transport core: {core} (rpc._accel; UDPRPC_PURE_PYTHON=1 forces pure Python)")
    print(f"{load_before} before the run, {load_text()} after it")


def print_measured(figures: Figures) -> None:
    """The wall-clock table with its ratios."""
    headers = (*c.RESULT_HEADERS[:8], "x raw trio", "x gRPC")
    rows = [
        [*c.result_row(r)[:8], ratio_text(figures.raw_ratio(r)), ratio_text(figures.grpc_ratio(r))]
        for r in figures.results
    ]
    print("\nMeasured (wall clock):")
    c.print_table(headers, rows)
    c.print_notes(figures.results)
    print("x raw trio: calls/s over the raw trio ping-pong (16 B) or the same payload; "
          "x gRPC: over grpcio aio (async) or grpcio sync (sync), same workload.")
    print("MB/s counts the request payload once per call (an echo moves as much again back).")


def print_cpu_view(figures: Figures) -> None:
    """CPU per call and the rate it allows: the comparison that a busy machine distorts least."""
    headers = ("system", "workload", "client µs", "server µs", "CPU-bound/s", "MB/s",
               "x raw trio", "x gRPC")
    rows = [
        [
            r.system, r.workload, c.fmt(r.client_cpu_us, 0), c.fmt(r.server_cpu_us, 0),
            c.fmt(r.cpu_bound_rate, 0),
            c.fmt(figures.mb_per_s(r)) if r.payload > len(c.SMALL_PAYLOAD) else "-",
            ratio_text(figures.raw_ratio(r)), ratio_text(figures.grpc_ratio(r)),
        ]
        for r in figures.results
        if r.calls > 0
    ]
    print("\nCPU per call (client and server processes; the chaos proxy not counted), and the rate")
    print("it allows with nothing else running, one call at a time: 1 / (client + server):")
    c.print_table(headers, rows)
    print("udprpc rows other than *-poll0us busy-poll for up to 100 µs before they sleep: their")
    print("CPU includes that polling, so sequential calls look costlier here than they are.")


def print_targets(figures: Figures, title: str) -> None:
    """PASS / MISS / N/A for every target under one metric."""
    print(f"\n{title}")
    for target in TARGETS:
        passed, detail = target.check(figures)
        verdict = {True: "PASS", False: "MISS", None: "N/A "}[passed]
        print(f"  {verdict}  {target.text}: {detail}")


def print_report(results: Sequence[c.Result]) -> None:
    """The measured table, the CPU view, then the targets judged both ways."""
    measured, by_cpu = Figures(results), Figures(results, cpu_bound_rate)
    print_measured(measured)
    print_cpu_view(by_cpu)
    print_targets(measured, "Targets, measured (the last three are the transport's alone):")
    print("A seq16 ratio to raw trio compares suites run minutes apart, a pair: ratio sections")
    print("run back to back (paired.py): on a machine whose speed drifts, pair: is the estimate.")
    print_targets(by_cpu, "Targets, judged by CPU per call (an estimate for an idle machine):")


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
    if not args.only or PAIRED.script in args.only:
        count = max(PAIRED_MIN_PAIRS, 3 * len(rounds))
        extra = [] if profile is c.QUICK else ["--pairs", str(count)]
        results += run_suite(PAIRED, profile, *extra)
    print_header(profile, time.perf_counter() - started, load_before, args.rounds)
    print_report(results)
    if args.json:
        c.emit_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
