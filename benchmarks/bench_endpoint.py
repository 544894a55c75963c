"""Sans-I/O micro-benchmark of the transport core: two Endpoints in one process, no sockets.

Prints CPU microseconds (``time.process_time``, robust to a loaded machine) per small-message
round trip, and MB/s for 1 MiB messages with 64 KB datagrams. Bounded in iterations.

    python benchmarks/bench_endpoint.py [--profile]
    python benchmarks/bench_endpoint.py --instructions   # needs valgrind; about a minute

``--instructions`` counts, with callgrind, the instructions one small round trip executes: the
difference between two runs of different lengths, divided by the difference in round trips, so
start-up and imports cancel out. Unlike CPU time it does not move with the machine's load
(a 2-vCPU VM swings 2x in time), which makes it the figure to compare changes by.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time

from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import Address, MessageReceived

CLIENT: Address = ("127.0.0.1", 40001)
SERVER: Address = ("127.0.0.1", 40002)
ROUND_TRIPS = 20_000
BIG_MESSAGES = 40
BIG_SIZE = 1024 * 1024
BIG_DATAGRAM = 64 * 1024 - 100
#: Virtual microseconds per hop: a clean loopback.
HOP = 20e-6


def _pump(src: Endpoint, src_addr: Address, dst: Endpoint, now: float) -> int:
    """Move every datagram ``src`` wants to send into ``dst``; return how many moved."""
    moved = 0
    for data, _ in src.datagrams_to_send(now=now):
        dst.receive_datagram(data, src_addr, now=now)
        moved += 1
    return moved


def _drain(endpoint: Endpoint) -> list[bytes]:
    payloads = []
    while (event := endpoint.next_event()) is not None:
        if type(event) is MessageReceived:
            payloads.append(event.payload)
    return payloads


def _fire_timers(endpoint: Endpoint, now: float) -> None:
    deadline = endpoint.get_timer()
    if deadline is not None and deadline <= now:
        endpoint.handle_timer(now=now)


def small_round_trips(count: int) -> float:
    """CPU µs per 32-byte request/reply round trip (the driver's full per-input work)."""
    client = Endpoint(accept_new_peers=False)
    server = Endpoint(accept_new_peers=True)
    payload = os.urandom(32)
    now = 0.0
    start = time.process_time()
    for _ in range(count):
        client.send_message(SERVER, payload, now=now)
        _fire_timers(client, now)
        now += HOP
        _pump(client, CLIENT, server, now)
        _fire_timers(server, now)
        for request in _drain(server):
            server.send_message(CLIENT, request, now=now)
        now += HOP
        _pump(server, SERVER, client, now)
        _fire_timers(client, now)
        _drain(client)
        now += HOP
    elapsed = time.process_time() - start
    return elapsed / count * 1e6


def bulk_transfer(count: int, size: int) -> float:
    """MB/s (CPU time) moving ``count`` messages of ``size`` bytes one way, acks coming back."""
    config = TransportConfig(max_datagram_size=BIG_DATAGRAM)
    client = Endpoint(config, accept_new_peers=False)
    server = Endpoint(config, accept_new_peers=True)
    payload = os.urandom(size)  # incompressible, as a worst case for the compressor check
    now = 0.0
    received = 0
    start = time.process_time()
    sent = 0
    for _ in range(count * 1000):
        while sent < count and client.send_capacity(SERVER) >= size:
            client.send_message(SERVER, payload, now=now)
            sent += 1
        now += HOP
        _pump(client, CLIENT, server, now)
        received += len(_drain(server))
        now += HOP
        _fire_timers(server, now)
        _pump(server, SERVER, client, now)
        _fire_timers(client, now)
        _drain(client)
        if received >= count:
            break
    elapsed = time.process_time() - start
    if received < count:
        raise SystemExit(f"bulk transfer stalled: {received}/{count} delivered")
    return count * size / elapsed / 1e6


#: Round trips of the short and the long run that ``--instructions`` compares.
COUNTED_ROUND_TRIPS = (200, 1200)
_COLLECTED = re.compile(r"Collected : ([\d,]+)")


def collected_instructions(callgrind_stderr: str) -> int:
    """The instruction total callgrind reports at exit (``==pid== Collected : 1,234``)."""
    found = _COLLECTED.findall(callgrind_stderr)
    if not found:
        raise SystemExit(f"no instruction count in callgrind's output:\n{callgrind_stderr[-500:]}")
    return int(found[-1].replace(",", ""))


def per_round_trip(short: tuple[int, int], long: tuple[int, int]) -> float:
    """Instructions per round trip from ``(round_trips, instructions)`` of two runs."""
    (short_n, short_total), (long_n, long_total) = short, long
    if long_n <= short_n:
        raise ValueError("the long run must have more round trips than the short one")
    return (long_total - short_total) / (long_n - short_n)


def count_instructions() -> float:
    """Run the small round trips under callgrind twice; instructions per round trip."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (Debian package: valgrind)")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in COUNTED_ROUND_TRIPS:
            done = subprocess.run(
                [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.{count}",
                 sys.executable, __file__, "--only-round-trips", str(count)],
                capture_output=True, text=True, check=True, timeout=600,
                env={**os.environ, "PYTHONHASHSEED": "0"},  # same dict layouts in both runs
            )
            runs.append((count, collected_instructions(done.stderr)))
    return per_round_trip(runs[0], runs[1])


def main() -> None:
    """Run both measurements and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each part")
    parser.add_argument("--round-trips", type=int, default=ROUND_TRIPS)
    parser.add_argument(
        "--instructions", action="store_true",
        help="count instructions per small round trip with callgrind (deterministic)",
    )
    parser.add_argument("--only-round-trips", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_round_trips is not None:  # the measured child of --instructions
        small_round_trips(args.only_round_trips)
        return
    if args.instructions:
        label = "small round trip, instructions (both endpoints)"
        print(f"{label:<48}{count_instructions():>12,.0f}")
        return
    if args.profile:
        for label, call in (
            ("small", lambda: small_round_trips(args.round_trips)),
            ("bulk", lambda: bulk_transfer(BIG_MESSAGES, BIG_SIZE)),
        ):
            profiler = cProfile.Profile()
            profiler.runcall(call)
            print(f"--- profile: {label}")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    small = min(small_round_trips(args.round_trips) for _ in range(3))
    bulk = max(bulk_transfer(BIG_MESSAGES, BIG_SIZE) for _ in range(3))
    print(f"{'measurement':<44}{'value':>12}")
    print(f"{'small round trip, CPU µs (both endpoints)':<44}{small:>12.1f}")
    print(f"{'1 MiB messages, 64 KB datagrams, CPU MB/s':<44}{bulk:>12.1f}")


if __name__ == "__main__":
    main()
