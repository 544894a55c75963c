"""The reliable transport alone: whole messages echoed over ``Endpoint`` + ``TrioDriver``.

    python benchmarks/bench_transport.py [--quick]

No RPC layer: the server's event callback sends every received message straight back, and the
client waits for it with one task wake-up. This isolates what the transport costs over a raw
trio UDP ping-pong (its targets: small round trips within 1.5x its latency; 1 MiB messages at
300 MB/s or more with large datagrams on loopback). The server runs in a subprocess.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import _common as c
import outcome
import trio

from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL
from rpc.drivers._trio import TrioDriver, open_udp_socket
from rpc.transport import events
from rpc.transport.config import MAX_UDP_PAYLOAD, TransportConfig
from rpc.transport.endpoint import Endpoint

SYSTEM = "udprpc-transport"
LOOPBACK_CONFIG = TransportConfig(max_datagram_size=MAX_UDP_PAYLOAD)
#: A section may overrun its budget by at most this long before it is abandoned (seconds).
MESSAGE_TIMEOUT = 10.0
WORKLOADS = {"seq16": len(c.SMALL_PAYLOAD), **c.PAYLOAD_SIZES}


async def serve(busy_poll: float = DEFAULT_BUSY_POLL) -> None:
    """Echo every message back to its sender until the parent leaves."""
    sock = await open_udp_socket(c.LOOPBACK, 0)
    driver: TrioDriver[Any]

    def on_event(event: object) -> None:
        if isinstance(event, events.MessageReceived):
            driver.send_message(event.addr, event.payload)

    endpoint = Endpoint(LOOPBACK_CONFIG, accept_new_peers=True)
    # respond_first: it answers everything.
    driver = TrioDriver(endpoint, sock, on_event, respond_first=True, busy_poll=busy_poll)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        c.serve_forever_guard()
        c.announce_ready(sock.getsockname()[1])
        await trio.sleep(c.SERVER_MAX_LIFETIME)
        nursery.cancel_scope.cancel()


class EchoClient:
    """Sends one message at a time and waits for its echo as the async RPC client does.

    When nobody else reads the socket the caller reads it itself (``TrioDriver.lead``: no task
    hop); otherwise it parks, counted in ``driver.followers``, and the reader task wakes it.
    """

    def __init__(self, port: int) -> None:
        self._server = (c.LOOPBACK, port)
        self._waiter: trio.lowlevel.Task | None = None
        self._reply: bytes | None = None
        self.driver: TrioDriver[Any] | None = None

    def on_event(self, event: object) -> None:
        """Keep the echo; wake a parked caller directly from the reader task (one hop)."""
        if isinstance(event, events.MessageReceived):
            self._reply = event.payload
            if self._waiter is not None and self.driver is not None:
                waiter, self._waiter = self._waiter, None
                self.driver.followers -= 1
                trio.lowlevel.reschedule(waiter, outcome.Value(event.payload))

    def _received(self) -> bytes:
        assert self._reply is not None
        return self._reply

    async def echo(self, payload: bytes) -> bytes:
        """One round trip of a whole message."""
        driver = self.driver
        assert driver is not None
        self._reply = None
        driver.send_message(self._server, payload)
        if driver.can_lead() and await driver.lead(lambda: self._reply is not None):
            return self._received()
        self._waiter = trio.lowlevel.current_task()
        driver.followers += 1

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiter = None
            driver.followers -= 1
            return trio.lowlevel.Abort.SUCCEEDED

        reply: bytes = await trio.lowlevel.wait_task_rescheduled(abort)
        return reply


async def measure(echo: EchoClient, payload: bytes, budget: c.Budget) -> c.Recorder:
    """Sequential round trips within the budget.

    One deadline around the whole section, as the raw trio ping-pong has, keeps a cancel scope
    off the measured path; the transport retransmits, so only a dead server ever reaches it.
    """
    with trio.fail_after(budget.seconds + MESSAGE_TIMEOUT):
        for _ in range(budget.warmup_calls):
            if await echo.echo(payload) != payload:
                raise RuntimeError("transport echo returned the wrong bytes")
        recorder = c.Recorder(budget)
        while recorder.running():
            start = time.perf_counter()
            await echo.echo(payload)
            recorder.record(time.perf_counter() - start)
        recorder.finish()
    return recorder


async def run_client(port: int, profile: c.Profile) -> list[c.Result]:
    """Every workload over one client endpoint."""
    client = EchoClient(port)
    sock = await open_udp_socket(c.LOOPBACK, 0)
    driver = TrioDriver(Endpoint(LOOPBACK_CONFIG, accept_new_peers=False), sock, client.on_event)
    client.driver = driver
    results = []
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        for workload, size in WORKLOADS.items():
            try:
                rec = await measure(client, c.payload_of(size), profile.budget(payload=size))
            except (trio.TooSlowError, Exception) as exc:  # report, go on with the next
                results.append(c.Result.skipped(SYSTEM, workload, f"failed: {exc!r}"))
            else:
                results.append(c.Result.from_recorder(SYSTEM, workload, size, rec))
        await driver.aclose()
        nursery.cancel_scope.cancel()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``serve`` runs the echo server; otherwise measure."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        parser = c.base_parser("transport benchmark server")
        parser.add_argument("--busy-poll", type=float, default=DEFAULT_BUSY_POLL)
        c.trio_run(serve, parser.parse_args(args_list[1:]).busy_poll)
        return 0
    parser = c.base_parser(__doc__.splitlines()[0] if __doc__ else "transport benchmark")
    args = parser.parse_args(args_list)
    profile = c.profile_from_args(args)
    c.progress(f"[{SYSTEM}] measuring ({profile.name})")
    with c.server_process(c.python_command("bench_transport.py", "serve")) as port:
        results = trio.run(run_client, port, profile)
    c.print_results("udprpc transport (Endpoint + TrioDriver, no RPC layer)", results, sys.stderr)
    if args.json:
        c.emit_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
