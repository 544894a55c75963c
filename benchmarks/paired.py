"""Sequential small calls measured in pairs with the raw trio ping-pong: ratios without the drift.

    python benchmarks/paired.py            # 9 pairs of 1.5 s sections per system; about 2 min
    python benchmarks/paired.py --quick    # 3 pairs of 0.5 s sections
    python benchmarks/paired.py --pairs 15

On a shared VM the machine's speed drifts by up to 2x within minutes, and ``run_all.py``'s suites
measure raw trio and this framework minutes apart, so their ratio partly measures the drift.
Here every server runs all along in its own process (raw trio echo, udprpc, udprpc with
``busy_poll=0``, and the transport's echo server), and this client process measures short
sections in turn: raw trio, then the udprpc system, for each system and each pair. Each
system's figure is its ratio to the raw trio section just before it; the report gives the
median ratio over the pairs and their range.

With ``--json`` the median pair of each system is emitted for ``run_all.py`` as two real
measurements under the workload ``pair:<system>``: that system's section and the raw trio
section it was paired with, whose ratio is the median ratio (the lower middle one for an even
number of pairs). Every section is bounded by its time budget; servers live as long as the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TextIO

import _common as c
import bench_transport as bt
import bench_udprpc as bu
import raw_pingpong as rp
import trio

import rpc
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL
from rpc.drivers._trio import TrioDriver, open_udp_socket
from rpc.transport.endpoint import Endpoint

#: Pairs measured per system, and each section's length (seconds), by profile.
PAIRS = {"quick": 3, "default": 9}
SECTION_SECONDS = {"quick": 0.5, "default": 1.5}
#: The udprpc systems paired with raw trio: their server script, and the polling budget of
#: both their ends.
SYSTEMS = {
    "udprpc-async": ("bench_udprpc.py", DEFAULT_BUSY_POLL),
    "udprpc-sync": ("bench_udprpc.py", DEFAULT_BUSY_POLL),
    "udprpc-async-poll0us": ("bench_udprpc.py", 0.0),
    "udprpc-transport": ("bench_transport.py", DEFAULT_BUSY_POLL),
}
RAW_TRIO = "raw-trio"


@dataclasses.dataclass(frozen=True)
class Pair:
    """One system's section and the raw trio section measured just before it."""

    raw: c.Result
    mine: c.Result

    @property
    def ratio(self) -> float:
        """Calls/s over raw trio's."""
        return self.mine.calls_per_s / self.raw.calls_per_s


def _measure(system: str, port: int, module: ModuleType, budget: c.Budget) -> c.Recorder:
    """One section of sequential 16-byte echo calls of ``system`` against the server at ``port``."""
    payload = c.SMALL_PAYLOAD
    if system == RAW_TRIO:
        return rp.CLIENTS["trio"](port, budget)
    if system == "udprpc-transport":
        return trio.run(_measure_transport, port, budget)
    busy_poll = SYSTEMS[system][1]
    if system.startswith("udprpc-sync"):
        with rpc.SyncClient(
            c.LOOPBACK, port, config=bu.LOOPBACK_CONFIG, busy_poll=busy_poll
        ) as conn:
            sync_client = module.BenchSyncClient(conn)

            def sync_echo(data: bytes) -> bytes:
                result: bytes = sync_client.echo(data, timeout=bu.CALL_TIMEOUT)
                return result

            return bu.measure_sync(sync_echo, payload, budget)

    async def run() -> c.Recorder:
        async with rpc.connect(
            c.LOOPBACK, port, config=bu.LOOPBACK_CONFIG, busy_poll=busy_poll
        ) as conn:
            client = module.BenchClient(conn)

            async def echo(data: bytes) -> bytes:
                result: bytes = await client.echo(data, timeout=bu.CALL_TIMEOUT)
                return result

            return await bu.measure_async(echo, payload, budget)

    return trio.run(run)


async def _measure_transport(port: int, budget: c.Budget) -> c.Recorder:
    """One section of the transport alone: bench_transport's client, on a fresh endpoint."""
    client = bt.EchoClient(port)
    endpoint = Endpoint(bt.LOOPBACK_CONFIG, accept_new_peers=False)
    sock = await open_udp_socket(c.LOOPBACK, 0)
    try:
        driver = TrioDriver(endpoint, sock, client.on_event)
        client.driver = driver
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            recorder = await bt.measure(client, c.SMALL_PAYLOAD, budget)
            await driver.aclose()
            nursery.cancel_scope.cancel()
    finally:
        sock.close()
    return recorder


@contextlib.contextmanager
def _servers(stubs: Path) -> Iterator[dict[str, int]]:
    """The port each system's client talks to, with every server running meanwhile."""
    with contextlib.ExitStack() as stack:
        ports = {RAW_TRIO: stack.enter_context(c.server_process(
            c.python_command("raw_pingpong.py", "serve", "--mode", "trio"), measured=False
        ))}
        started: dict[tuple[str, float], int] = {}
        for system, server in SYSTEMS.items():
            if server not in started:
                script, busy_poll = server
                stub_args = ["--stubs", str(stubs)] if script == "bench_udprpc.py" else []
                command = c.python_command(
                    script, "serve", *stub_args, "--busy-poll", repr(busy_poll)
                )
                started[server] = stack.enter_context(c.server_process(command, measured=False))
            ports[system] = started[server]
        yield ports


def measure_pairs(stubs: Path, pairs: int, seconds: float) -> dict[str, list[Pair]]:
    """``pairs`` rounds of (raw trio, system) sections for every system, interleaved."""
    budget = c.Budget(seconds=seconds, max_calls=2_000_000, warmup_calls=20)
    measured: dict[str, list[Pair]] = {system: [] for system in SYSTEMS}
    module = bu.load_stubs(stubs)
    with _servers(stubs) as ports:

        def section(system: str) -> c.Result:
            recorder = _measure(system, ports[system], module, budget)
            return c.Result.from_recorder(system, "seq16", len(c.SMALL_PAYLOAD), recorder)

        for number in range(1, pairs + 1):
            c.progress(f"[paired] round {number} of {pairs}")
            for system in SYSTEMS:
                raw = section(RAW_TRIO)
                measured[system].append(Pair(raw, section(system)))
    return measured


def median_pair(pairs: Sequence[Pair]) -> Pair:
    """The pair whose ratio is the median (the lower middle one for an even count)."""
    ordered = sorted(pairs, key=lambda pair: pair.ratio)
    return ordered[(len(ordered) - 1) // 2]


def report(measured: dict[str, list[Pair]], out: TextIO) -> None:
    """A table of each system's paired ratios to raw trio."""
    rows = []
    for system, pairs in measured.items():
        ratios = sorted(pair.ratio for pair in pairs)
        middle = median_pair(pairs)
        rows.append([
            system,
            str(len(pairs)),
            f"{middle.ratio:.2f}x",
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}x",
            c.fmt(statistics.median(p.mine.calls_per_s for p in pairs), 0),
            c.fmt(statistics.median(p.raw.calls_per_s for p in pairs), 0),
            c.fmt(statistics.median(p.mine.client_cpu_us for p in pairs), 0),
        ])
    headers = (
        "system", "pairs", "x raw trio", "range", "calls/s", "raw trio/s", "cli CPU µs",
    )
    print("\n== sequential 16 B calls, each paired with the raw trio section before it", file=out)
    c.print_table(headers, rows, out=out)


def as_results(measured: dict[str, list[Pair]]) -> list[c.Result]:
    """Each system's median pair, as ``pair:<system>`` rows for ``run_all.py``."""
    results = []
    for system, pairs in measured.items():
        middle = median_pair(pairs)
        ratios = ", ".join(f"{pair.ratio:.2f}" for pair in pairs)
        workload = f"pair:{system}"
        results.append(dataclasses.replace(middle.raw, workload=workload))
        results.append(dataclasses.replace(
            middle.mine, workload=workload, note=f"paired ratios {ratios}"
        ))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table, and emit the median pairs with ``--json``."""
    parser = c.base_parser(__doc__.splitlines()[0] if __doc__ else "paired benchmark")
    parser.add_argument("--pairs", type=int, metavar="N", help="pairs per system")
    args = parser.parse_args(argv)
    profile = c.profile_from_args(args)
    pairs = max(1, args.pairs or PAIRS[profile.name])
    with bu.generated_stubs() as stubs:
        measured = measure_pairs(stubs, pairs, SECTION_SECONDS[profile.name])
    report(measured, sys.stderr if args.json else sys.stdout)
    if args.json:
        c.emit_results(as_results(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
