"""Shared helpers of the benchmark scripts: budgets, timing, percentiles, results, tables, and
server subprocesses with a readiness handshake and guaranteed teardown.

Every measuring loop is bounded twice, by a call count and by a deadline, so a stalled or
misbehaving implementation can slow a benchmark down but never hang it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

#: First line a server subprocess prints once it is listening: ``READY <port>``.
READY_PREFIX = "READY"
#: A benchmark subprocess prints its results as one JSON line starting with this marker.
RESULTS_PREFIX = "RESULTS "

#: A server process lives at most this long, even if its parent forgets it (seconds).
SERVER_MAX_LIFETIME = 900.0
#: How long a server may take to start (imports, stub loading) before we give up (seconds).
SERVER_READY_TIMEOUT = 30.0
#: How long a server gets to exit after its stdin closes, before it is terminated (seconds).
SERVER_EXIT_GRACE = 3.0

#: Payload sizes of the throughput sections: 1 KiB, 64 KiB, 1 MiB.
PAYLOAD_SIZES = {"1KiB": 1024, "64KiB": 64 * 1024, "1MiB": 1024 * 1024}
#: Payload of the small-call sections: a 16 B echo.
SMALL_PAYLOAD = b"0123456789abcdef"


def payload_of(size: int) -> bytes:
    """A deterministic, incompressible payload of ``size`` bytes.

    Random-looking bytes so that no system gains from compressing it (our transport compresses
    with zstd when that helps; zeros would make its figures meaningless).
    """
    return random.Random(size).randbytes(size)


#: Calls in flight in the concurrency section.
IN_FLIGHT = 32
#: Largest message the benchmark services must carry; gRPC's default limit is 4 MiB.
MAX_MESSAGE = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long one measurement may run: a wall-clock limit and a call-count limit."""

    seconds: float
    max_calls: int
    warmup_calls: int = 20


@dataclasses.dataclass(frozen=True)
class Profile:
    """The budgets of one whole run (``--quick`` or the default)."""

    name: str
    section_seconds: float
    loss_seconds: float

    def budget(self, *, loss: bool = False, payload: int = len(SMALL_PAYLOAD)) -> Budget:
        """The budget of one section; big payloads get fewer warm-up calls."""
        seconds = self.loss_seconds if loss else self.section_seconds
        warmup = 20 if payload <= 64 * 1024 else 3
        return Budget(seconds=seconds, max_calls=2_000_000, warmup_calls=warmup)


QUICK = Profile("quick", section_seconds=1.0, loss_seconds=2.0)
DEFAULT = Profile("default", section_seconds=4.0, loss_seconds=8.0)


def profile_from_args(args: argparse.Namespace) -> Profile:
    """Pick the profile selected by ``--quick``."""
    return QUICK if args.quick else DEFAULT


class Recorder:
    """Collects per-call latencies while enforcing a :class:`Budget`.

    Several workers (threads' worth of tasks, not OS threads) may share one recorder: each asks
    :meth:`running` before a call and reports the call's duration with :meth:`record`.
    """

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.latencies: list[float] = []
        self.errors = 0
        # The server measured is the innermost one started by server_process (see there).
        self._server = _measured_servers[-1] if _measured_servers else None
        self._server_cpu_started = self._server.cpu_seconds() if self._server else None
        self.server_cpu_seconds: float | None = None
        self.started = time.perf_counter()
        self._cpu_started = time.process_time()
        self.cpu_seconds: float | None = None
        self._deadline = self.started + budget.seconds
        self._issued = 0
        self.finished: float | None = None

    def running(self) -> bool:
        """True while the budget allows another call; counts the call as issued."""
        if self._issued >= self._budget.max_calls or time.perf_counter() >= self._deadline:
            return False
        self._issued += 1
        return True

    def record(self, seconds: float) -> None:
        """Record one successful call's latency."""
        self.latencies.append(seconds)

    def record_error(self) -> None:
        """Count a failed call (it is excluded from the latencies)."""
        self.errors += 1

    def finish(self) -> None:
        """Mark the end of the measurement (call once all workers are done)."""
        self.finished = time.perf_counter()
        self.cpu_seconds = time.process_time() - self._cpu_started
        if self._server is not None and self._server_cpu_started is not None:
            now = self._server.cpu_seconds()
            if now is not None:
                self.server_cpu_seconds = now - self._server_cpu_started

    @property
    def elapsed(self) -> float:
        """Seconds from creation to :meth:`finish` (or to now)."""
        end = self.finished if self.finished is not None else time.perf_counter()
        return end - self.started


def _per_call_us(seconds: float | None, calls: int) -> float:
    return seconds / calls * 1e6 if seconds is not None and calls else math.nan


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in [0, 1])."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclasses.dataclass(frozen=True)
class Result:
    """One measured figure: a system running a workload."""

    system: str  # "udprpc-async", "grpc-sync", "raw-trio", ...
    workload: str  # "seq16", "inflight32", "1KiB", "64KiB", "1MiB", "loss1%", "loss5%"
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    payload: int
    errors: int = 0
    note: str = ""
    #: CPU time of the whole client process per completed call (all its threads), in µs.
    #: Less sensitive to a busy machine than wall-clock rates; the server's CPU is not included.
    client_cpu_us: float = math.nan
    #: CPU time of the server process per completed call, in µs (NaN when not measured).
    server_cpu_us: float = math.nan

    @property
    def cpu_bound_rate(self) -> float:
        """Calls/s if client and server CPU were the only cost and never overlapped.

        For one call at a time this is what an otherwise idle machine would approach; it is
        the figure to compare across systems when the machine is busy.
        """
        total = self.client_cpu_us + self.server_cpu_us
        return 1e6 / total if total > 0 else math.nan

    @property
    def calls_per_s(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds if self.seconds > 0 else math.nan

    @property
    def mb_per_s(self) -> float:
        """Payload megabytes (10^6 B) per second, counting the request direction only.

        An echo of N bytes moves N bytes each way; we count N per call, the same for every
        system, so ratios are unaffected by the convention.
        """
        return self.calls_per_s * self.payload / 1e6

    @classmethod
    def from_recorder(
        cls, system: str, workload: str, payload: int, recorder: Recorder, note: str = ""
    ) -> Result:
        """Summarise a finished recorder."""
        ordered = sorted(recorder.latencies)
        cpu, server_cpu = recorder.cpu_seconds, recorder.server_cpu_seconds
        return cls(
            system=system,
            workload=workload,
            calls=len(ordered),
            seconds=recorder.elapsed,
            p50_ms=percentile(ordered, 0.50) * 1e3,
            p99_ms=percentile(ordered, 0.99) * 1e3,
            max_ms=(ordered[-1] * 1e3) if ordered else math.nan,
            payload=payload,
            errors=recorder.errors,
            note=note,
            client_cpu_us=_per_call_us(cpu, len(ordered)),
            server_cpu_us=_per_call_us(server_cpu, len(ordered)),
        )

    @classmethod
    def skipped(cls, system: str, workload: str, why: str) -> Result:
        """A placeholder for a section that could not run."""
        nan = math.nan
        return cls(system, workload, 0, 0.0, nan, nan, nan, 0, note=f"skipped: {why}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        raw = dataclasses.asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in raw.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """Inverse of :meth:`to_json`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {
            k: (math.nan if v is None else v) for k, v in data.items() if k in fields
        }
        return cls(**clean)


def emit_results(results: Sequence[Result]) -> None:
    """Print results as one machine-readable line (read by ``run_all.py``)."""
    print(RESULTS_PREFIX + json.dumps([r.to_json() for r in results]), flush=True)


def parse_results(stdout: str) -> list[Result]:
    """Find the results line in a benchmark subprocess's output."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULTS_PREFIX):
            return [Result.from_json(d) for d in json.loads(line[len(RESULTS_PREFIX) :])]
    return []


# --------------------------------------------------------------------------- table printing


def fmt(value: float, digits: int = 1) -> str:
    """Format a number for the table; NaN prints as a dash."""
    if math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: Any = None) -> None:
    """Print a plain-text table with right-aligned numeric columns."""
    stream = out if out is not None else sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]

    def join(cells: Sequence[str]) -> str:
        # The first two columns are names (left-aligned); the rest are numbers.
        return "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths))
        )

    header = join(headers)
    print(header, file=stream)
    print("-" * len(header), file=stream)
    for row in rows:
        print(join(row), file=stream)


RESULT_HEADERS = (
    "system", "workload", "calls", "calls/s", "p50 ms", "p99 ms", "max ms", "MB/s",
    "cli CPU µs", "srv CPU µs",
)


def result_row(r: Result) -> list[str]:
    """The standard columns of one result."""
    if r.calls == 0:
        return [r.system, r.workload, *(["-"] * (len(RESULT_HEADERS) - 2))]
    mbps = fmt(r.mb_per_s) if r.payload > len(SMALL_PAYLOAD) else "-"
    return [
        r.system,
        r.workload,
        str(r.calls),
        fmt(r.calls_per_s, 0),
        fmt(r.p50_ms, 3),
        fmt(r.p99_ms, 3),
        fmt(r.max_ms, 3),
        mbps,
        fmt(r.client_cpu_us, 0),
        fmt(r.server_cpu_us, 0),
    ]


def print_results(title: str, results: Sequence[Result], out: Any = None) -> None:
    """Print a titled table of results."""
    stream = out if out is not None else sys.stdout
    print(f"\n== {title}", file=stream)
    print_table(RESULT_HEADERS, [result_row(r) for r in results], out=stream)
    print_notes(results, out=stream)


def print_notes(results: Sequence[Result], out: Any = None) -> None:
    """Print the notes of results (why a section was skipped, errors seen) under a table."""
    stream = out if out is not None else sys.stdout
    # One line per distinct note of a system, naming every workload it applies to.
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in results:
        errors = f"{r.errors} failed calls" if r.errors else ""
        text = "; ".join(part for part in (r.note, errors) if part)
        if text:
            grouped.setdefault((r.system, text), []).append(r.workload)
    for (system, note), workloads in grouped.items():
        print(f"  note: {system} {', '.join(workloads)}: {note}", file=stream)


def progress(message: str) -> None:
    """Progress notes go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- subprocesses


def python_command(script: str, *args: str) -> list[str]:
    """Command line running a script of this directory with the current interpreter."""
    return [sys.executable, str(BENCH_DIR / script), *args]


def subprocess_env() -> dict[str, str]:
    """Environment of child processes: unbuffered, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """Read one line of a child's stdout, giving up after ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no readiness line within {timeout:.0f} s")
    return proc.stdout.readline()


#: How long a server gets to answer a CPU-time query (seconds).
CPU_QUERY_TIMEOUT = 5.0
#: The query line a server's stdin watcher answers with ``CPU <seconds>``.
CPU_QUERY = "cpu"


class ServerHandle:
    """A running server subprocess: its port, and a way to ask for its CPU time."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self._proc = proc
        self.port = port
        self._broken = False

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time so far (all threads), or None if it cannot say."""
        if self._broken or self._proc.stdin is None:
            return None
        try:
            self._proc.stdin.write(CPU_QUERY + "\n")
            self._proc.stdin.flush()
            words = _read_line(self._proc, CPU_QUERY_TIMEOUT).split()
            return float(words[1]) if len(words) == 2 and words[0] == "CPU" else None
        except (OSError, TimeoutError, ValueError):
            self._broken = True  # stop asking; the figures will say "-"
            return None


#: Servers whose CPU the next Recorder measures, innermost last (see server_process).
_measured_servers: list[ServerHandle] = []


@contextlib.contextmanager
def server_process(
    argv: Sequence[str],
    *,
    ready_timeout: float = SERVER_READY_TIMEOUT,
    measured: bool = True,
    exit_grace: float = SERVER_EXIT_GRACE,
) -> Iterator[int]:
    """Start a server subprocess, wait for ``READY <port>``, yield the port, always tear down.

    The child is told to leave by closing its stdin (see :func:`serve_forever_guard`); if it is
    still there after a grace period it is terminated, then killed. While the block runs, every
    :class:`Recorder` also measures this server's CPU time, unless ``measured`` is false (for
    helpers such as the chaos proxy) or a server started inside the block is measured instead.
    """
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    try:
        line = _read_line(proc, ready_timeout).split()
        if len(line) != 2 or line[0] != READY_PREFIX:
            raise RuntimeError(f"server {argv[1:]} did not start (said {' '.join(line)!r})")
        handle = ServerHandle(proc, int(line[1]))
        if measured:
            _measured_servers.append(handle)
        try:
            yield handle.port
        finally:
            if measured:
                _measured_servers.remove(handle)
    finally:
        _stop(proc, exit_grace)


def _stop(proc: subprocess.Popen[str], grace: float = SERVER_EXIT_GRACE) -> None:
    """Ask a child to exit, then insist after ``grace`` seconds."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def announce_ready(port: int) -> None:
    """Tell the parent (see :func:`server_process`) that the server listens on ``port``."""
    print(f"{READY_PREFIX} {port}", flush=True)


def serve_forever_guard(max_lifetime: float = SERVER_MAX_LIFETIME) -> None:
    """Make this server process exit when its parent closes our stdin, or after a lifetime.

    Until then it answers each ``cpu`` line on stdin with ``CPU <seconds>`` on stdout: the
    process's CPU time so far. The parent asks only after it has read the ready line.

    Runs in daemon threads so it works the same under trio, asyncio and thread pools;
    ``os._exit`` because a benchmark server has nothing to flush.
    """

    def wait_for_eof() -> None:
        # Answer CPU-time queries (see ServerHandle) until the parent closes our stdin.
        with contextlib.suppress(OSError, ValueError):
            for line in sys.stdin:
                if line.strip() == CPU_QUERY:
                    print(f"CPU {time.process_time():.6f}", flush=True)
        os._exit(0)

    def lifetime() -> None:
        time.sleep(max_lifetime)
        os._exit(3)

    threading.Thread(target=wait_for_eof, daemon=True, name="parent-watch").start()
    threading.Thread(target=lifetime, daemon=True, name="lifetime").start()


def run_child(argv: Sequence[str], timeout: float) -> tuple[list[Result], str]:
    """Run a benchmark subprocess to completion; return its results and an error note."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=subprocess_env()
        )
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout:.0f} s"
    sys.stderr.write(done.stderr)
    results = parse_results(done.stdout)
    if done.returncode != 0 and not results:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [], f"exit status {done.returncode}: {tail}"
    return results, ""


def base_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the options every benchmark script shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="short run: a second or two a section")
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    return parser


# --------------------------------------------------------------------------- trio clock

#: Environment variable: run this process's trio clock this many times slower than real time.
#: bench_instructions.py sets it for the process it runs under callgrind, which executes about
#: that much slower: timers (ack delay, retransmission timeout, the driver's leader grace) then
#: fire as often per call as they do natively, instead of on nearly every call.
CLOCK_SLOWDOWN_ENV = "UDPRPC_BENCH_CLOCK_SLOWDOWN"


class SlowedClock(trio.abc.Clock):
    """A trio clock running ``factor`` times slower than ``time.perf_counter``."""

    def __init__(self, factor: float) -> None:
        self._factor = factor
        self._start = time.perf_counter()

    def start_clock(self) -> None:
        """Start counting from now."""
        self._start = time.perf_counter()

    def current_time(self) -> float:
        """Seconds of slowed time since the start."""
        return (time.perf_counter() - self._start) / self._factor

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """Real seconds until ``deadline`` (slowed time)."""
        return max(0.0, (deadline - self.current_time()) * self._factor)


def trio_run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``trio.run``, on a :class:`SlowedClock` when :data:`CLOCK_SLOWDOWN_ENV` asks for one."""
    factor = float(os.environ.get(CLOCK_SLOWDOWN_ENV, "0") or 0)
    clock = SlowedClock(factor) if factor > 1 else None
    return trio.run(fn, *args, clock=clock)
