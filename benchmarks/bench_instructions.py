"""Instructions per small call, counted by callgrind: a cost figure the machine's load cannot move.

    python benchmarks/bench_instructions.py                        # every system; a few minutes
    python benchmarks/bench_instructions.py --systems raw-trio udprpc-async
    python benchmarks/bench_instructions.py --critical-path        # only what the peer waits for

Wall-clock and CPU-time figures on a shared 2-vCPU VM swing by up to 2x between runs, so a change
worth 10% cannot be seen in them. Instruction counts can: each side of each system (the client
process, then the server process) runs under ``valgrind --tool=callgrind`` twice, for a short and
a long series of sequential 16-byte echo calls, while the other side runs normally. The difference
of the two totals divided by the difference in calls is what one call costs that side, start-up
and imports cancelling out; repeated runs agree within a few percent (the count of event-loop
iterations and timer wake-ups varies a little with timing).

Only user-space instructions are counted: the kernel's part of each system call is not, and
neither are cache misses, so this is a measure of the Python work per call, not a prediction of
the rate. Needs ``valgrind`` on the PATH. Every run is bounded by a call count and a timeout.

``--critical-path`` counts only the part of each call the other side waits for: from the moment
a process has input (its wait returned with a datagram ready, or it read one) to its next send
(see ``_critical_path.py``). A sequential call's rate follows this more closely than the total,
since what a process does after a send overlaps the peer's work. It needs a C compiler and
valgrind's headers (``valgrind/callgrind.h``) to build the one-line collection switch.

Both ends of this framework run with ``busy_poll=0``: how often a wait polls its socket before
it blocks depends on timing (callgrind's slowdown most of all), not on the work of a call.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import _common as c
import trio

#: The collection switch ``_critical_path.py`` loads (``--critical-path``).
_TOGGLE_SOURCE = """#include <valgrind/callgrind.h>
void udprpc_cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
"""

#: Calls of the short and the long series whose difference is measured.
SERIES = (300, 2300)
#: Longest one series may take under callgrind (about 50x slower than native) (seconds).
RUN_TIMEOUT = 600.0
#: A server under callgrind takes tens of seconds to import and start listening.
VALGRIND_READY_TIMEOUT = 180.0
#: Reply wait of the raw blocking client; a lost datagram (never seen on loopback) is resent.
RAW_REPLY_TIMEOUT = 2.0
#: How much slower a process runs under callgrind (measured here: about 40x for this code).
SLOWDOWN = 40
_COLLECTED = re.compile(r"Collected : ([\d,]+)")

#: Systems measured, in the order of the report.
SYSTEMS = ("raw-blocking", "raw-trio", "udprpc-transport", "udprpc-async", "udprpc-sync")


def server_command(system: str, stubs: Path) -> list[str]:
    """The benchmark server each system's client talks to (the same ones run_all.py uses)."""
    if system.startswith("raw-"):
        return c.python_command("raw_pingpong.py", "serve", "--mode", system[4:])
    if system == "udprpc-transport":
        return c.python_command("bench_transport.py", "serve", "--busy-poll", "0")
    return c.python_command("bench_udprpc.py", "serve", "--stubs", str(stubs), "--busy-poll", "0")


# --------------------------------------------------------------------------- clients


def _raw_blocking_client(port: int, calls: int, stubs: Path) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(RAW_REPLY_TIMEOUT)
        sock.connect((c.LOOPBACK, port))
        done = 0
        while done < calls:
            sock.send(c.SMALL_PAYLOAD)
            with contextlib.suppress(TimeoutError):
                sock.recv(len(c.SMALL_PAYLOAD) + 1)
                done += 1
    return 0


async def _raw_trio_client(port: int, calls: int) -> int:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.connect((c.LOOPBACK, port))
        # One deadline around the loop, as in raw_pingpong.py: a cancel scope per call would
        # cost more than the rest of the round trip (loopback never loses a datagram).
        with trio.fail_after(RUN_TIMEOUT):
            for _ in range(calls):
                await sock.send(c.SMALL_PAYLOAD)
                await sock.recv(len(c.SMALL_PAYLOAD) + 1)
    return 0


async def _transport_client(port: int, calls: int) -> int:
    import bench_transport as bt

    from rpc.drivers._trio import TrioDriver, open_udp_socket
    from rpc.transport.endpoint import Endpoint

    client = bt.EchoClient(port)
    sock = await open_udp_socket(c.LOOPBACK, 0)
    endpoint = Endpoint(bt.LOOPBACK_CONFIG, accept_new_peers=False)
    driver = TrioDriver(endpoint, sock, client.on_event, busy_poll=0)
    client.driver = driver
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        with trio.fail_after(RUN_TIMEOUT):
            for _ in range(calls):
                await client.echo(c.SMALL_PAYLOAD)
        await driver.aclose()
        nursery.cancel_scope.cancel()
    return endpoint.statistics().retransmissions


async def _async_client(port: int, calls: int, stubs: Path) -> int:
    import bench_udprpc as bu

    import rpc

    module = bu.load_stubs(stubs)
    async with rpc.connect(c.LOOPBACK, port, config=bu.LOOPBACK_CONFIG, busy_poll=0) as client:
        stub = module.BenchClient(client)
        with trio.fail_after(RUN_TIMEOUT):
            for _ in range(calls):
                await stub.echo(c.SMALL_PAYLOAD)
        retransmissions: int = client.statistics().transport.retransmissions
    return retransmissions


def _sync_client(port: int, calls: int, stubs: Path) -> int:
    import bench_udprpc as bu

    import rpc

    module = bu.load_stubs(stubs)
    with rpc.SyncClient(c.LOOPBACK, port, config=bu.LOOPBACK_CONFIG, busy_poll=0) as client:
        stub = module.BenchSyncClient(client)
        for _ in range(calls):
            stub.echo(c.SMALL_PAYLOAD)
        retransmissions: int = client.statistics().transport.retransmissions
    return retransmissions


#: Each makes the calls and returns how many datagrams its transport retransmitted (a timer that
#: fired only because callgrind slowed the process down would show here).
CLIENTS: dict[str, Callable[[int, int, Path], int]] = {
    "raw-blocking": _raw_blocking_client,
    "raw-trio": lambda port, calls, stubs: c.trio_run(_raw_trio_client, port, calls),
    "udprpc-transport": lambda port, calls, stubs: c.trio_run(_transport_client, port, calls),
    "udprpc-async": lambda port, calls, stubs: c.trio_run(_async_client, port, calls, stubs),
    "udprpc-sync": _sync_client,
}


# --------------------------------------------------------------------------- counting


def valgrind_prefix(log: Path) -> list[str]:
    """The command prefix that runs a process under callgrind, its summary going to ``log``.

    Its trio clock runs :data:`SLOWDOWN` times slower (see ``_common.SlowedClock``), so that its
    timers fire about as often per call as they do natively.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed: it counts the instructions")
    return [
        "env", f"{c.CLOCK_SLOWDOWN_ENV}={SLOWDOWN}",
        valgrind, "--tool=callgrind", f"--log-file={log}", f"--callgrind-out-file={log}.out",
    ]  # fmt: skip


def collected(log: Path) -> int:
    """The instruction total callgrind reported at exit (``Collected : 1,234``)."""
    found = _COLLECTED.findall(log.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"no instruction count in {log}")
    return int(found[-1].replace(",", ""))


def client_command(system: str, port: int, calls: int, stubs: Path) -> list[str]:
    """This script's ``client`` sub-command, making ``calls`` sequential echo calls."""
    return c.python_command(
        "bench_instructions.py", "client", "--system", system, "--port", str(port),
        "--calls", str(calls), "--stubs", str(stubs),
    )  # fmt: skip


def build_toggle(work: Path) -> Path:
    """Compile the collection switch for ``--critical-path``; exits with a message if it can't."""
    source, library = work / "cg_toggle.c", work / "cg_toggle.so"
    source.write_text(_TOGGLE_SOURCE)
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("--critical-path needs a C compiler (cc or gcc) on the PATH")
    built = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if built.returncode != 0:
        raise SystemExit(
            "--critical-path could not build its callgrind switch (are valgrind's headers, "
            f"valgrind/callgrind.h, installed?):\n{built.stderr}"
        )
    return library


def measured(command: list[str], log: Path, toggle: Path | None) -> list[str]:
    """``command`` (a python script's) run under callgrind; with ``toggle``, collecting only
    the critical path (``_critical_path.py`` runs the script)."""
    if toggle is None:
        return valgrind_prefix(log) + command
    python, script, *args = command
    hook = str(Path(__file__).resolve().parent / "_critical_path.py")
    return [*valgrind_prefix(log), "--collect-atstart=no", python, hook, str(toggle), script, *args]


def count_once(
    system: str, side: str, calls: int, stubs: Path, work: Path, toggle: Path | None = None
) -> int:
    """Instructions of the ``side`` process over a series of ``calls`` calls (with ``toggle``:
    of its critical path only)."""
    log = work / f"{system}.{side}.{calls}.log"
    log.unlink(missing_ok=True)
    server = server_command(system, stubs)
    if side == "server":
        server = measured(server, log, toggle)
    with c.server_process(
        server, measured=False, ready_timeout=VALGRIND_READY_TIMEOUT, exit_grace=30.0
    ) as port:
        client = client_command(system, port, calls, stubs)
        if side == "client":
            client = measured(client, log, toggle)
        done = subprocess.run(
            client, env=c.subprocess_env(), timeout=RUN_TIMEOUT, check=True,
            capture_output=True, text=True,
        )  # fmt: skip
    retransmitted = int(done.stdout.split()[-1])
    if retransmitted:
        c.progress(f"[{system}] note: the client retransmitted {retransmitted} datagrams")
    return collected(log)


def per_call(system: str, side: str, stubs: Path, work: Path, toggle: Path | None = None) -> float:
    """Instructions one call costs ``side``: the difference of two series."""
    short, long = SERIES
    c.progress(f"[{system}] counting the {side} ({short} and {long} calls under callgrind)")
    low = count_once(system, side, short, stubs, work, toggle)
    high = count_once(system, side, long, stubs, work, toggle)
    return (high - low) / (long - short)


@contextlib.contextmanager
def bench_stubs() -> Iterator[Path]:
    """The generated stubs of benchmarks/bench.idl, in a temporary directory."""
    import bench_udprpc as bu

    with bu.generated_stubs() as path:
        yield path


def report(
    rows: Sequence[tuple[str, float, float]], out: TextIO | None = None, *, critical: bool = False
) -> None:
    """Print the table: per side, both sides, and each system's total over raw trio's."""
    raw = {system: client + server for system, client, server in rows}.get("raw-trio")
    table = []
    for system, client, server in rows:
        total = client + server
        ratio = "-" if raw is None else f"{total / raw:.2f}x"
        table.append([system, f"{client:,.0f}", f"{server:,.0f}", f"{total:,.0f}", ratio])
    headers = ("system", "client", "server", "both", "x raw trio")
    what = "critical path only: input to next send" if critical else "user space"
    print(f"\n== instructions per sequential 16 B echo call (callgrind, {what})", file=out)
    c.print_table(headers, table, out=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``client`` makes calls (run by the measurement); otherwise measure."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["client"]:
        parser = argparse.ArgumentParser()
        parser.add_argument("--system", choices=SYSTEMS, required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--calls", type=int, required=True)
        parser.add_argument("--stubs", type=Path, required=True)
        args = parser.parse_args(args_list[1:])
        print("retransmitted", CLIENTS[args.system](args.port, args.calls, args.stubs))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument(
        "--critical-path", action="store_true",
        help="count only from a process's input to its next send (what the peer waits for)",
    )  # fmt: skip
    args = parser.parse_args(args_list)
    rows = []
    with bench_stubs() as stubs, tempfile.TemporaryDirectory(prefix="udprpc-cg-") as tmp:
        toggle = build_toggle(Path(tmp)) if args.critical_path else None
        for system in args.systems:
            client = per_call(system, "client", stubs, Path(tmp), toggle)
            server = per_call(system, "server", stubs, Path(tmp), toggle)
            rows.append((system, client, server))
    report(rows, sys.stdout, critical=args.critical_path)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")  # the same dict layouts in every run
    sys.exit(main())
