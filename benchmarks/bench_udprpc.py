"""This framework (udprpc) on 127.0.0.1: the trio client, the sync client, the asyncio client.

    python benchmarks/bench_udprpc.py [--quick] [--client async|sync|aio|both|all] [--no-loss]
        [--busy-poll SECONDS] [--workloads seq16 ...]

Sections per client: sequential 16 B echo calls (calls/s, p50/p99), 32 calls in flight (async
only), payloads of 1 KiB, 64 KiB and 1 MiB (MB/s), and the sequential small calls again through
the chaos proxy with 1% and 5% datagram loss in each direction (p50/p99/max).

The stubs come from ``rpcgen bench.idl`` run into a temporary directory at start-up. The server
(``serve`` sub-command) and the chaos proxy (``proxy`` sub-command) run in their own processes;
the client runs in this one. Both ends use datagrams as large as loopback allows
(``TransportConfig.max_datagram_size``), as a deployment on one host or a LAN would.
``--busy-poll`` sets both ends' polling budget (``busy_poll`` of ``rpc.connect``,
``rpc.SyncClient`` and ``rpc.Server``); a value other than the default is named in the
system's label, e.g. ``udprpc-async-poll0us``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import _common as c
import trio

import rpc
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL
from rpc.testing import LinkFaults
from rpc.testing.chaos_proxy import ChaosProxy
from rpc.transport.config import MAX_UDP_PAYLOAD, TransportConfig

IDL_FILE = c.BENCH_DIR / "bench.idl"
STUB_MODULE = "bench"
#: Loopback carries datagrams up to the IPv4 UDP limit; see docs/performance.md.
LOOPBACK_CONFIG = TransportConfig(max_datagram_size=MAX_UDP_PAYLOAD)
#: No benchmark call may take longer than this; a call that does is counted as failed (seconds).
CALL_TIMEOUT = 10.0
#: A section stops early after this many failed calls: its figures would mean nothing.
MAX_ERRORS = 50
#: Datagram loss rates of the loss sections (each direction).
LOSS_RATES = {"loss1%": 0.01, "loss5%": 0.05}
#: Seed of the chaos proxy, so two runs see the same pattern of losses.
PROXY_SEED = 7


# --------------------------------------------------------------------------- generated stubs


def generate_stubs(out_dir: Path) -> Path:
    """Run ``rpcgen bench.idl -o out_dir``; return the generated module's path."""
    cmd = [sys.executable, "-m", "codegen.cli", str(IDL_FILE), "-o", str(out_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=c.subprocess_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rpcgen failed ({done.returncode}): {done.stderr.strip()}")
    module = out_dir / f"{STUB_MODULE}.py"
    if not module.exists():
        raise RuntimeError(f"rpcgen did not write {module.name}: {sorted(out_dir.iterdir())}")
    return module


def load_stubs(path: Path) -> ModuleType:
    """Import a generated module from its file."""
    spec = importlib.util.spec_from_file_location(STUB_MODULE, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[STUB_MODULE] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def generated_stubs(given: Path | None = None) -> Iterator[Path]:
    """Generate the stubs into a temporary directory that is removed afterwards.

    ``given`` is an already generated module to use instead (for working on the benchmark).
    """
    if given is not None:
        yield given.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="udprpc-bench-") as tmp:
        yield generate_stubs(Path(tmp))


# --------------------------------------------------------------------------- server and proxy


def make_handler(stubs: ModuleType) -> Any:
    """An echo handler built on the generated handler base."""

    class EchoHandler(stubs.BenchHandler):  # type: ignore[misc, name-defined]
        """Echo, sink and ping: the least work a handler can do."""

        async def echo(self, payload: bytes) -> bytes:
            return payload

        async def sink(self, payload: bytes) -> int:
            return len(payload)

        async def ping(self) -> None:
            return None

    return EchoHandler()


async def serve(stubs_path: Path, busy_poll: float = DEFAULT_BUSY_POLL) -> None:
    """Serve the echo handler on an ephemeral loopback port until the parent leaves."""
    stubs = load_stubs(stubs_path)
    server = rpc.Server(
        [make_handler(stubs)],
        host=c.LOOPBACK,
        port=0,
        config=LOOPBACK_CONFIG,
        busy_poll=busy_poll,
    )
    async with server:
        c.serve_forever_guard()
        c.announce_ready(server.address[1])
        await trio.sleep(c.SERVER_MAX_LIFETIME)


async def run_proxy(target_port: int, loss: float) -> None:
    """Relay datagrams to ``target_port``, dropping ``loss`` of them in each direction."""
    faults = LinkFaults(loss=loss)
    proxy = ChaosProxy(
        (c.LOOPBACK, target_port), faults, faults, PROXY_SEED, listen=(c.LOOPBACK, 0)
    )
    async with proxy:
        c.serve_forever_guard()
        c.announce_ready(proxy.address[1])
        await trio.sleep(c.SERVER_MAX_LIFETIME)


# --------------------------------------------------------------------------- measuring

AsyncEcho = Callable[[bytes], Awaitable[bytes]]
SyncEcho = Callable[[bytes], bytes]


async def _trio_workers(worker: Callable[[], Awaitable[None]], count: int) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(worker)


async def _asyncio_workers(worker: Callable[[], Awaitable[None]], count: int) -> None:
    await asyncio.gather(*(worker() for _ in range(count)))


Workers = Callable[[Callable[[], Awaitable[None]], int], Awaitable[None]]


async def measure_async(
    echo: AsyncEcho,
    payload: bytes,
    budget: c.Budget,
    concurrency: int = 1,
    workers: Workers = _trio_workers,
) -> c.Recorder:
    """``concurrency`` tasks (trio's, or asyncio's with ``workers=_asyncio_workers``) each
    making sequential calls, sharing one budget."""
    for _ in range(budget.warmup_calls):
        if await echo(payload) != payload:
            raise RuntimeError("udprpc echo returned the wrong bytes")
    recorder = c.Recorder(budget)

    async def worker() -> None:
        while recorder.running() and recorder.errors < MAX_ERRORS:
            start = time.perf_counter()
            try:
                await echo(payload)
            except rpc.RpcError:
                recorder.record_error()
            else:
                recorder.record(time.perf_counter() - start)

    await workers(worker, concurrency)
    recorder.finish()
    return recorder


def measure_sync(echo: SyncEcho, payload: bytes, budget: c.Budget) -> c.Recorder:
    """Sequential blocking calls within the budget."""
    for _ in range(budget.warmup_calls):
        if echo(payload) != payload:
            raise RuntimeError("udprpc echo returned the wrong bytes")
    recorder = c.Recorder(budget)
    while recorder.running() and recorder.errors < MAX_ERRORS:
        start = time.perf_counter()
        try:
            echo(payload)
        except rpc.RpcError:
            recorder.record_error()
        else:
            recorder.record(time.perf_counter() - start)
    recorder.finish()
    return recorder


@dataclasses.dataclass(frozen=True)
class Section:
    """One workload: a payload, how many calls in flight, and which budget applies."""

    workload: str
    payload: int
    concurrency: int = 1
    loss: bool = False

    def budget(self, profile: c.Profile) -> c.Budget:
        """This section's share of the run's time."""
        return profile.budget(loss=self.loss, payload=self.payload)


SMALL = len(c.SMALL_PAYLOAD)
CLEAN_SECTIONS = (
    Section("seq16", SMALL),
    Section(f"inflight{c.IN_FLIGHT}", SMALL, c.IN_FLIGHT),
    *(Section(name, size) for name, size in c.PAYLOAD_SIZES.items()),
)
LOSS_SECTIONS = {rate: Section(name, SMALL, loss=True) for name, rate in LOSS_RATES.items()}


def _loss_note(stats: rpc.ClientStatistics) -> str:
    """Evidence that the loss happened and was repaired, from the client's counters."""
    transport = stats.transport
    return (
        f"client retransmitted {transport.retransmissions} datagrams "
        f"({transport.lost_packets} declared lost) for {transport.messages_sent} calls"
    )


def system_name(kind: str, busy_poll: float) -> str:
    """``udprpc-async``, or ``udprpc-async-poll0us`` for a polling budget not the default."""
    if busy_poll == DEFAULT_BUSY_POLL:
        return f"udprpc-{kind}"
    return f"udprpc-{kind}-poll{round(busy_poll * 1e6)}us"


def _failed(system: str, section: Section, exc: Exception) -> c.Result:
    c.progress(f"[{system}] {section.workload} failed: {exc!r}")
    return c.Result.skipped(system, section.workload, f"failed: {exc!r}")


async def _measure_sections(
    system: str,
    conn: rpc.Client | rpc.aio.Client,
    stubs: ModuleType,
    sections: Sequence[Section],
    profile: c.Profile,
    workers: Workers,
) -> list[c.Result]:
    """The sections, in order, over one async connection (trio's or asyncio's)."""
    client = stubs.BenchClient(conn)  # the same generated class on either loop
    results = []

    async def echo(payload: bytes) -> bytes:
        result: bytes = await client.echo(payload, timeout=CALL_TIMEOUT)
        return result

    for section in sections:
        payload = c.payload_of(section.payload)
        try:
            rec = await measure_async(
                echo, payload, section.budget(profile), section.concurrency, workers
            )
        except Exception as exc:  # report the section as failed, go on with the next
            results.append(_failed(system, section, exc))
        else:
            note = _loss_note(conn.statistics()) if section.loss else ""
            results.append(
                c.Result.from_recorder(system, section.workload, len(payload), rec, note)
            )
    return results


async def _run_async(
    port: int,
    stubs: ModuleType,
    sections: Sequence[Section],
    profile: c.Profile,
    busy_poll: float,
) -> list[c.Result]:
    """The sections over one trio connection (``rpc.connect``)."""
    async with rpc.connect(
        c.LOOPBACK, port, config=LOOPBACK_CONFIG, busy_poll=busy_poll
    ) as conn:
        return await _measure_sections(
            system_name("async", busy_poll), conn, stubs, sections, profile, _trio_workers
        )


def _run_sync(
    port: int,
    stubs: ModuleType,
    sections: Sequence[Section],
    profile: c.Profile,
    busy_poll: float,
) -> list[c.Result]:
    """The sequential sections, in order, over one blocking client."""
    system = system_name("sync", busy_poll)
    results = []
    with rpc.SyncClient(c.LOOPBACK, port, config=LOOPBACK_CONFIG, busy_poll=busy_poll) as conn:
        client = stubs.BenchSyncClient(conn)

        def echo(payload: bytes) -> bytes:
            result: bytes = client.echo(payload, timeout=CALL_TIMEOUT)
            return result

        for section in sections:
            if section.concurrency > 1:
                continue  # a blocking client has one call in flight
            payload = c.payload_of(section.payload)
            try:
                rec = measure_sync(echo, payload, section.budget(profile))
            except Exception as exc:  # report the section as failed, go on with the next
                results.append(_failed(system, section, exc))
            else:
                note = _loss_note(conn.statistics()) if section.loss else ""
                results.append(
                    c.Result.from_recorder(system, section.workload, len(payload), rec, note)
                )
    return results


async def _run_aio(
    port: int,
    stubs: ModuleType,
    sections: Sequence[Section],
    profile: c.Profile,
    busy_poll: float,
) -> list[c.Result]:
    """The sections over one asyncio connection (``rpc.aio.connect``)."""
    async with rpc.aio.connect(c.LOOPBACK, port, config=LOOPBACK_CONFIG) as conn:
        return await _measure_sections(
            system_name("aio", busy_poll), conn, stubs, sections, profile, _asyncio_workers
        )


Runner = Callable[[int, ModuleType, Sequence[Section], c.Profile, float], list[c.Result]]
RUNNERS: dict[str, Runner] = {
    "async": lambda port, stubs, sections, profile, busy_poll: trio.run(
        _run_async, port, stubs, sections, profile, busy_poll
    ),
    "sync": _run_sync,
    "aio": lambda port, stubs, sections, profile, busy_poll: asyncio.run(
        _run_aio(port, stubs, sections, profile, busy_poll)
    ),
}


def run_client(
    kind: str,
    stubs_path: Path,
    profile: c.Profile,
    loss: bool,
    busy_poll: float = DEFAULT_BUSY_POLL,
    workloads: Sequence[str] | None = None,
) -> list[c.Result]:
    """The sections of one client kind (only ``workloads``, if given); each network condition
    gets a fresh server process."""
    system = system_name(kind, busy_poll)
    stubs = load_stubs(stubs_path)
    server_cmd = c.python_command(
        "bench_udprpc.py", "serve", "--stubs", str(stubs_path), "--busy-poll", repr(busy_poll)
    )
    chosen = [s for s in CLEAN_SECTIONS if workloads is None or s.workload in workloads]
    c.progress(f"[{system}] clean network ({profile.name})")
    with c.server_process(server_cmd) as port:
        results = RUNNERS[kind](port, stubs, chosen, profile, busy_poll)
    for rate, section in LOSS_SECTIONS.items() if loss else ():
        if workloads is not None and section.workload not in workloads:
            continue
        c.progress(f"[{system}] {section.workload} datagram loss through the chaos proxy")
        with c.server_process(server_cmd) as port:
            proxy_cmd = c.python_command(
                "bench_udprpc.py", "proxy", "--target", str(port), "--loss", str(rate)
            )
            with c.server_process(proxy_cmd, measured=False) as proxy_port:
                results += RUNNERS[kind](proxy_port, stubs, [section], profile, busy_poll)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``serve`` / ``proxy`` run helper processes; otherwise measure."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        parser = c.base_parser("udprpc benchmark server")
        parser.add_argument("--stubs", type=Path, required=True)
        parser.add_argument("--busy-poll", type=float, default=DEFAULT_BUSY_POLL)
        args = parser.parse_args(args_list[1:])
        c.trio_run(serve, args.stubs, args.busy_poll)
        return 0
    if args_list[:1] == ["proxy"]:
        parser = c.base_parser("chaos proxy for the loss sections")
        parser.add_argument("--target", type=int, required=True)
        parser.add_argument("--loss", type=float, required=True)
        args = parser.parse_args(args_list[1:])
        trio.run(run_proxy, args.target, args.loss)
        return 0
    parser = c.base_parser(__doc__.splitlines()[0] if __doc__ else "udprpc benchmark")
    parser.add_argument(
        "--client", choices=["async", "sync", "aio", "both", "all"], default="both",
        help="async: trio client; aio: asyncio client; both: async and sync; all: the three",
    )
    parser.add_argument("--no-loss", action="store_true", help="skip the chaos-proxy sections")
    parser.add_argument(
        "--stubs", type=Path, help="use this generated bench.py instead of running rpcgen"
    )
    parser.add_argument(
        "--busy-poll", type=float, default=DEFAULT_BUSY_POLL, metavar="SECONDS",
        help="both ends' polling budget before a blocking wait (0: never poll)",
    )
    parser.add_argument(
        "--workloads", nargs="+", metavar="NAME",
        help="run only these sections (e.g. seq16 inflight32 loss5%%)",
    )
    args = parser.parse_args(args_list)
    kinds = {"both": ["async", "sync"], "all": ["async", "sync", "aio"]}.get(
        args.client, [args.client]
    )
    profile = c.profile_from_args(args)
    results = []
    with generated_stubs(args.stubs) as stubs_path:
        for kind in kinds:
            try:
                results += run_client(
                    kind, stubs_path, profile, not args.no_loss, args.busy_poll, args.workloads
                )
            except Exception as exc:  # e.g. the server did not start: say so, go on
                system = system_name(kind, args.busy_poll)
                c.progress(f"[{system}] failed: {exc!r}")
                results.append(c.Result.skipped(system, "-", f"failed: {exc!r}"))
    c.print_results("udprpc (this framework)", results, out=sys.stderr)
    if args.json:
        c.emit_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
