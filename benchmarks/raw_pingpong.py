"""Raw UDP ping-pong on 127.0.0.1: the physical limit any RPC over UDP is measured against.

    python benchmarks/raw_pingpong.py            # a few seconds per section
    python benchmarks/raw_pingpong.py --quick    # about a second per section

A 16-byte datagram goes to an echo server in another process and back, one at a time, first
with plain blocking sockets on both sides, then with trio sockets on both sides, then with
asyncio datagram transports on both sides (``--mode asyncio``: the limit the asyncio client is
compared with). No framing, no
acks, no retransmission: whatever an RPC layer adds shows up as its distance from these figures.
Every loop is bounded by a round-trip count and a deadline; a lost datagram (there should be
none on loopback) is counted as an error after a short timeout instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO, cast

import _common as c
import trio

#: A reply not back within this long counts as lost (loopback never takes this long).
REPLY_TIMEOUT = 1.0
#: Largest datagram the echo server reads.
BUFSIZE = 65536


# --------------------------------------------------------------------------- servers


def serve_blocking() -> None:
    """Echo datagrams with a blocking socket until the parent leaves."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((c.LOOPBACK, 0))
    c.serve_forever_guard()
    c.announce_ready(sock.getsockname()[1])
    while True:
        data, addr = sock.recvfrom(BUFSIZE)
        sock.sendto(data, addr)


async def _serve_trio() -> None:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind((c.LOOPBACK, 0))
    c.serve_forever_guard()
    c.announce_ready(sock.getsockname()[1])
    with trio.move_on_after(c.SERVER_MAX_LIFETIME):
        while True:
            data, addr = await sock.recvfrom(BUFSIZE)
            await sock.sendto(data, addr)


class _EchoProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def _serve_asyncio() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        _EchoProtocol, local_addr=(c.LOOPBACK, 0)
    )
    c.serve_forever_guard()
    c.announce_ready(transport.get_extra_info("sockname")[1])
    await asyncio.sleep(c.SERVER_MAX_LIFETIME)


SERVERS: dict[str, Callable[[], None]] = {
    "blocking": serve_blocking,
    "trio": lambda: c.trio_run(_serve_trio),
    "asyncio": lambda: asyncio.run(_serve_asyncio()),
}


# --------------------------------------------------------------------------- clients


def measure_blocking(port: int, budget: c.Budget) -> c.Recorder:
    """Sequential round trips with a blocking socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(REPLY_TIMEOUT)
    sock.connect((c.LOOPBACK, port))
    payload = c.SMALL_PAYLOAD

    def round_trip() -> bool:
        sock.send(payload)
        try:
            return sock.recv(BUFSIZE) == payload
        except TimeoutError:
            return False

    try:
        for _ in range(budget.warmup_calls):
            round_trip()
        recorder = c.Recorder(budget)
        while recorder.running():
            start = time.perf_counter()
            if round_trip():
                recorder.record(time.perf_counter() - start)
            else:
                recorder.record_error()
        recorder.finish()
    finally:
        sock.close()
    return recorder


async def _measure_trio(port: int, budget: c.Budget) -> c.Recorder:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.connect((c.LOOPBACK, port))
    payload = c.SMALL_PAYLOAD
    with sock:
        for _ in range(budget.warmup_calls):
            await sock.send(payload)
            await sock.recv(BUFSIZE)
        recorder = c.Recorder(budget)
        # One deadline around the whole loop keeps a cancel scope off the measured path; a
        # lost reply (never seen on loopback) stalls the loop until then and counts as lost.
        with trio.move_on_after(budget.seconds + REPLY_TIMEOUT) as scope:
            while recorder.running():
                start = time.perf_counter()
                await sock.send(payload)
                if await sock.recv(BUFSIZE) == payload:
                    recorder.record(time.perf_counter() - start)
                else:
                    recorder.record_error()
        if scope.cancelled_caught:
            recorder.record_error()
        recorder.finish()
    return recorder


class _ReplyProtocol(asyncio.DatagramProtocol):
    """Completes ``waiter`` with each datagram that arrives."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[bytes] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)


async def _measure_asyncio(port: int, budget: c.Budget) -> c.Recorder:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _ReplyProtocol, remote_addr=(c.LOOPBACK, port)
    )
    payload = c.SMALL_PAYLOAD

    async def round_trip() -> bool:
        protocol.waiter = loop.create_future()
        transport.sendto(payload)
        try:
            return await asyncio.wait_for(protocol.waiter, REPLY_TIMEOUT) == payload
        except TimeoutError:
            return False

    try:
        for _ in range(budget.warmup_calls):
            await round_trip()
        recorder = c.Recorder(budget)
        while recorder.running():
            start = time.perf_counter()
            if await round_trip():
                recorder.record(time.perf_counter() - start)
            else:
                recorder.record_error()
        recorder.finish()
    finally:
        transport.close()
    return recorder


CLIENTS: dict[str, Callable[[int, c.Budget], c.Recorder]] = {
    "blocking": measure_blocking,
    "trio": lambda port, budget: trio.run(_measure_trio, port, budget),
    "asyncio": lambda port, budget: asyncio.run(_measure_asyncio(port, budget)),
}


def run_mode(mode: str, profile: c.Profile) -> c.Result:
    """Start the ``mode`` echo server in a subprocess and ping-pong with the ``mode`` client."""
    system = f"raw-{mode}"
    c.progress(f"[{system}] starting server")
    with c.server_process(c.python_command("raw_pingpong.py", "serve", "--mode", mode)) as port:
        c.progress(f"[{system}] measuring ({profile.name})")
        recorder = CLIENTS[mode](port, profile.budget())
    return c.Result.from_recorder(system, "seq16", len(c.SMALL_PAYLOAD), recorder)


def print_microseconds(results: Sequence[c.Result], out: TextIO) -> None:
    """The figures this script is about, in round trips per second and microseconds."""
    rows = [
        [
            r.system,
            r.workload,
            str(r.calls),
            c.fmt(r.calls_per_s, 0),
            c.fmt(r.p50_ms * 1e3, 1),
            c.fmt(r.p99_ms * 1e3, 1),
            str(r.errors),
        ]
        for r in results
    ]
    headers = ("system", "workload", "round trips", "per s", "p50 µs", "p99 µs", "lost")
    print("\n== raw UDP ping-pong, 16 B, sequential, 127.0.0.1", file=out)
    c.print_table(headers, rows, out=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``serve --mode M`` runs an echo server; otherwise measure both modes."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        parser = c.base_parser("raw UDP echo server")
        parser.add_argument("--mode", choices=sorted(SERVERS), required=True)
        SERVERS[parser.parse_args(args_list[1:]).mode]()
        return 0
    parser = c.base_parser(__doc__.splitlines()[0] if __doc__ else "raw UDP ping-pong")
    parser.add_argument(
        "--mode", choices=["blocking", "trio", "asyncio", "both", "all"], default="both"
    )
    args = parser.parse_args(args_list)
    modes = {"both": ["blocking", "trio"], "all": ["blocking", "trio", "asyncio"]}.get(
        args.mode, [args.mode]
    )
    results = [run_mode(mode, c.profile_from_args(args)) for mode in modes]
    print_microseconds(results, sys.stderr if args.json else sys.stdout)
    if args.json:
        c.emit_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
