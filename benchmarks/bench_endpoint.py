"""Sans-I/O micro-benchmark of the transport core: two Endpoints in one process, no sockets.

Prints CPU microseconds (``time.process_time``, robust to a loaded machine) per small-message
round trip, and MB/s for 1 MiB messages with 64 KB datagrams. Bounded in iterations.

    python benchmarks/bench_endpoint.py [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

from rpc.config import TransportConfig
from rpc.endpoint import Endpoint
from rpc.events import Address, MessageReceived

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


def main() -> None:
    """Run both measurements and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each part")
    parser.add_argument("--round-trips", type=int, default=ROUND_TRIPS)
    args = parser.parse_args()
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
