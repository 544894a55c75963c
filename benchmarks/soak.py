"""Soak test: a mixed workload through the chaos proxy for a given duration (not a unit test).

    python benchmarks/soak.py --duration 60 [--loss 0.05 --burst 3 --dup 0.02 --reorder 0.05
        --corrupt 0.02 --jitter 0.002] [--concurrency 32] [--seed 1] [--stubs bench.py]

The server (``serve`` sub-command) runs in its own process so that its peak memory is its own;
the chaos proxy and the async client run in this one. Workers call a weighted mix of small and
large echoes, uploads and pings until the duration is over; every echo's result is compared
with what was sent. The report: calls, failures by kind (exception and outcome), retransmission
ratios of both ends, p50/p99 latency of successful calls, what the proxy did, and the server's
peak resident memory. Everything is bounded: the workload by ``--duration``, each call by
``CALL_TIMEOUT``, the whole run by a hard limit on top.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as c
import bench_udprpc as bench
import trio

import rpc
from rpc.testing import LinkFaults
from rpc.testing.chaos_proxy import ChaosProxy, ProxyStatistics
from rpc.transport.config import DEFAULT_MAX_DATAGRAM_SIZE, TransportConfig

#: No call may take longer than this (seconds); one that does fails with DeadlineExceeded.
CALL_TIMEOUT = 10.0
#: Seconds beyond ``--duration`` the whole run may take (start-up, last calls, shutdown).
RUN_SLACK = CALL_TIMEOUT + 30.0
#: Prefix of the server's last line: its statistics and peak memory as JSON.
FINAL_PREFIX = "FINAL "
#: How long the server gets to report after its stdin closes (seconds).
FINAL_TIMEOUT = 10.0
#: ru_maxrss is in KiB on Linux (getrusage(2)); bytes on macOS.
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


# --------------------------------------------------------------------------- the server


def serve(stubs_path: Path, config: TransportConfig) -> None:
    """Serve the bench handler until stdin closes; then print FINAL statistics and exit."""

    async def main() -> None:
        stubs = bench.load_stubs(stubs_path)
        server = rpc.Server([bench.make_handler(stubs)], host=c.LOOPBACK, port=0, config=config)
        token = trio.lowlevel.current_trio_token()
        async with server:
            threading.Thread(target=_report_on_eof, args=(server, token), daemon=True).start()
            c.announce_ready(server.address[1])
            await trio.sleep(c.SERVER_MAX_LIFETIME)

    trio.run(main)


def _report_on_eof(server: rpc.Server, token: trio.lowlevel.TrioToken) -> None:
    for _ in sys.stdin:  # the parent never writes; EOF means "report and go"
        pass
    stats = trio.from_thread.run_sync(server.statistics, trio_token=token)
    t = stats.transport
    final = {
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_UNIT,
        "calls_received": stats.calls_received,
        "calls_failed": dict(stats.calls_failed),
        "datagrams_sent": t.datagrams_sent,
        "retransmissions": t.retransmissions,
        "crc_failures": t.crc_failures,
        "duplicate_datagrams": t.duplicate_datagrams,
        "peers": t.peers,
        "reply_cache_entries": stats.reply_cache.entries,
    }
    print(FINAL_PREFIX + json.dumps(final), flush=True)
    os._exit(0)


def _read_final(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Close the server's stdin and collect its FINAL line (bounded by FINAL_TIMEOUT)."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()
    final: dict[str, Any] = {}
    deadline = time.monotonic() + FINAL_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = c._read_line(proc, deadline - time.monotonic())
        except TimeoutError:
            break
        if not line:
            break
        if line.startswith(FINAL_PREFIX):
            final = json.loads(line[len(FINAL_PREFIX) :])
            break
    try:
        proc.wait(timeout=c.SERVER_EXIT_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return final


# --------------------------------------------------------------------------- the workload


@dataclass
class Tally:
    """What the workers saw."""

    latencies: list[float] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def calls(self) -> int:
        return len(self.latencies) + sum(self.failures.values())


Call = Callable[[Any], Awaitable[bool]]


def _echo(size: int) -> Call:
    data = c.payload_of(size)

    async def call(stub: Any) -> bool:
        return bool(await stub.echo(data, timeout=CALL_TIMEOUT) == data)

    return call


def _sink(size: int) -> Call:
    data = c.payload_of(size)

    async def call(stub: Any) -> bool:
        return bool(await stub.sink(data, timeout=CALL_TIMEOUT) == size)

    return call


async def _ping(stub: Any) -> bool:
    await stub.ping(timeout=CALL_TIMEOUT)
    return True


#: The mix: (name, weight, call). Mostly small calls, some multi-datagram ones, a few large.
MIX: tuple[tuple[str, int, Call], ...] = (
    ("echo 16 B", 70, _echo(16)),
    ("echo 4 KiB", 15, _echo(4 * 1024)),
    ("echo 64 KiB", 8, _echo(64 * 1024)),
    ("sink 256 KiB", 2, _sink(256 * 1024)),
    ("ping", 5, _ping),
)


async def _worker(stub: Any, rng: random.Random, until: float, tally: Tally) -> None:
    names = [m[0] for m in MIX]
    weights = [m[1] for m in MIX]
    calls = {m[0]: m[2] for m in MIX}
    while trio.current_time() < until:
        name = rng.choices(names, weights)[0]
        tally.by_kind[name] += 1
        start = trio.current_time()
        try:
            ok = await calls[name](stub)
        except rpc.RpcError as exc:
            tally.failures[f"{type(exc).__name__} ({exc.outcome.value})"] += 1
            continue
        if ok:
            tally.latencies.append(trio.current_time() - start)
        else:
            tally.failures["wrong result"] += 1


async def soak(args: argparse.Namespace, port: int, stubs: Any) -> tuple[Tally, Any, Any]:
    """Run the workload; return the tally, the client's and the proxy's statistics."""
    faults = LinkFaults(
        loss=args.loss, burst_max=args.burst, duplicate=args.dup, reorder=args.reorder,
        corrupt=args.corrupt, jitter=args.jitter,
    )
    tally = Tally()
    with trio.fail_after(args.duration + RUN_SLACK):
        async with ChaosProxy(
            (c.LOOPBACK, port), faults, faults, args.seed, listen=(c.LOOPBACK, 0)
        ) as proxy, rpc.connect(*proxy.address, config=_config(args)) as client:
            stub = stubs.BenchClient(client)
            until = trio.current_time() + args.duration
            async with trio.open_nursery() as nursery:
                for n in range(args.concurrency):
                    nursery.start_soon(_worker, stub, random.Random(args.seed * 1000 + n), until,
                                       tally)
            return tally, client.statistics(), proxy.statistics()


# --------------------------------------------------------------------------- the report


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "-"


def report(
    args: argparse.Namespace,
    tally: Tally,
    client: rpc.ClientStatistics,
    proxy: ProxyStatistics,
    server: dict[str, Any],
) -> None:
    """Print the soak's table."""
    lat = sorted(tally.latencies)
    t = client.transport
    rows = [
        ["duration", f"{args.duration:.0f} s"],
        ["faults each way", f"loss {args.loss} (bursts <= {args.burst}), dup {args.dup}, "
         f"reorder {args.reorder}, corrupt {args.corrupt}, jitter {args.jitter} s"],
        ["datagram size", f"{args.datagram_size} B"],
        ["calls", str(tally.calls)],
        ["succeeded", str(len(lat))],
        *[["failed: " + kind, str(n)] for kind, n in sorted(tally.failures.items())],
        ["p50 latency", f"{c.percentile(lat, 0.50) * 1000:.3f} ms" if lat else "-"],
        ["p99 latency", f"{c.percentile(lat, 0.99) * 1000:.3f} ms" if lat else "-"],
        ["client retransmission ratio", _ratio(t.retransmissions, t.datagrams_sent)],
        ["server retransmission ratio",
         _ratio(server.get("retransmissions", 0), server.get("datagrams_sent", 0))],
        ["checksum failures (client/server)",
         f"{t.crc_failures}/{server.get('crc_failures', '-')}"],
        ["proxy dropped/duplicated/corrupted",
         "/".join(str(getattr(proxy.to_server, f) + getattr(proxy.to_client, f))
                  for f in ("dropped", "duplicated", "corrupted"))],
        ["server peak memory",
         f"{server['peak_rss'] / 2**20:.1f} MiB" if "peak_rss" in server else "-"],
        ["server state after (peers/cache entries)",
         f"{server.get('peers', '-')}/{server.get('reply_cache_entries', '-')}"],
    ]
    print(f"\n== soak: {dict(sorted(tally.by_kind.items()))}")
    c.print_table(["metric", "value"], rows)


def _config(args: argparse.Namespace) -> TransportConfig:
    return TransportConfig(max_datagram_size=args.datagram_size)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments; run the server (``serve``) or the soak."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="soak", choices=("soak", "serve"))
    parser.add_argument("stubs_path", nargs="?", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of workload")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--burst", type=int, default=3, help="longest loss burst")
    parser.add_argument("--dup", type=float, default=0.02)
    parser.add_argument("--reorder", type=float, default=0.05)
    parser.add_argument("--corrupt", type=float, default=0.02)
    parser.add_argument("--jitter", type=float, default=0.001, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--datagram-size", type=int, default=DEFAULT_MAX_DATAGRAM_SIZE,
                        help="max_datagram_size of both ends (loopback allows 65507)")
    parser.add_argument("--stubs", type=Path, help="an already generated bench module")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.stubs_path, _config(args))
        return 0
    with bench.generated_stubs(args.stubs) as stubs_path:
        stubs = bench.load_stubs(stubs_path)
        proc = subprocess.Popen(
            c.python_command(
                "soak.py", "serve", str(stubs_path), "--datagram-size", str(args.datagram_size)
            ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=c.subprocess_env(),
        )
        try:
            ready = c._read_line(proc, c.SERVER_READY_TIMEOUT).split()
            if len(ready) != 2 or ready[0] != c.READY_PREFIX:
                raise RuntimeError(f"the soak server did not start (said {ready!r})")
            c.progress(f"soaking for {args.duration:.0f} s through the chaos proxy...")
            tally, client, proxy = trio.run(soak, args, int(ready[1]), stubs)
        finally:
            server = _read_final(proc)
    report(args, tally, client, proxy, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
