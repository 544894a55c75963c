"""A chaos UDP proxy: real sockets, the simulated network's faults, a seed.

It listens on 127.0.0.1, forwards each client's datagrams to a target from an upstream socket of
that client's own (so replies find their way back), and shapes both directions with
:class:`~rpc.testing._faults.LinkShaper`, the same fault model :class:`rpc.testing.SimNetwork` uses.

From a test::

    async with ChaosProxy(server_address, to_server=LinkFaults(loss=0.1), seed=1) as proxy:
        ...  # point the client at proxy.address; proxy.statistics() says what it did

From a shell::

    rpc-chaos-proxy --listen 127.0.0.1:9001 --target 127.0.0.1:9000 --loss 0.1 --dup 0.05 \\
        --corrupt 0.05 --seed 1 --duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import trio

from rpc.drivers._io import RECV_BUFSIZE, bind_udp_socket
from rpc.drivers._nursery import BackgroundNursery
from rpc.drivers._trio import TrioUdpSocket
from rpc.testing._delayline import DelayLine
from rpc.testing._faults import (
    CLEAN,
    Address,
    DropCause,
    FaultCounters,
    FaultStatistics,
    LinkFaults,
    LinkShaper,
    ReorderDetector,
)

#: Clients (distinct source addresses) served at once; the least recently active is evicted
#: (its upstream socket closed) to make room, so a port scan cannot exhaust file descriptors.
DEFAULT_MAX_CLIENTS = 256

#: Signals that stop the command-line proxy (after which it prints its report).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

__all__ = ["ChaosProxy", "ProxyStatistics", "main"]


@dataclass(frozen=True)
class ProxyStatistics:
    """What the proxy did in each direction, and to its client table."""

    to_server: FaultStatistics
    to_client: FaultStatistics
    clients: int
    clients_evicted: int


class _Direction:
    """One direction's shaper and counters."""

    def __init__(self, faults: LinkFaults, rng: random.Random) -> None:
        self.shaper = LinkShaper(faults, rng)
        self.counters = FaultCounters()
        self.reorder = ReorderDetector()
        self.sequence = 0


#: A datagram on its way: direction, sending socket, destination, data, link, sequence number.
_InFlight = tuple[_Direction, TrioUdpSocket, Address, bytes, tuple[Address, Address], int]


class ChaosProxy:
    """Forwards UDP between clients and ``target``, applying faults in each direction.

    ``to_server`` shapes client→target datagrams, ``to_client`` the replies. Each direction has
    its own random stream derived from ``seed``, so the sequence of fault decisions repeats.
    Use it as ``async with``; :attr:`address` is where clients should send.
    """

    def __init__(
        self,
        target: Address,
        to_server: LinkFaults = CLEAN,
        to_client: LinkFaults = CLEAN,
        seed: int = 0,
        *,
        listen: Address = ("127.0.0.1", 0),
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        self.target = target
        self._listen_address = listen
        self._max_clients = max_clients
        self._to_server = _Direction(to_server, random.Random(f"{seed}|to_server"))
        self._to_client = _Direction(to_client, random.Random(f"{seed}|to_client"))
        self._upstreams: OrderedDict[Address, TrioUdpSocket] = OrderedDict()
        self._evicted = 0
        self._delays: DelayLine[_InFlight] = DelayLine(self._release)
        self._listener: TrioUdpSocket | None = None
        self._nursery: trio.Nursery | None = None
        self._stack = contextlib.AsyncExitStack()
        self._origin = 0.0

    @property
    def address(self) -> Address:
        """Where clients send (valid inside ``async with``)."""
        if self._listener is None:
            raise RuntimeError("the proxy is not running")
        return self._listener.getsockname()

    def set_faults(
        self, to_server: LinkFaults | None = None, to_client: LinkFaults | None = None
    ) -> None:
        """Change the faults of one or both directions from now on."""
        if to_server is not None:
            self._to_server.shaper.faults = to_server
        if to_client is not None:
            self._to_client.shaper.faults = to_client

    def statistics(self) -> ProxyStatistics:
        """Counters for both directions."""
        return ProxyStatistics(
            self._to_server.counters.snapshot(),
            self._to_client.counters.snapshot(),
            len(self._upstreams),
            self._evicted,
        )

    async def __aenter__(self) -> ChaosProxy:
        self._listener = TrioUdpSocket(bind_udp_socket(self._listen_address))
        self._origin = trio.current_time()
        self._stack.callback(self._close_sockets)
        self._nursery = await self._stack.enter_async_context(BackgroundNursery())
        self._nursery.start_soon(self._delays.run)
        self._nursery.start_soon(self._serve_clients, self._listener)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        return await self._stack.__aexit__(exc_type, exc, tb)

    def _close_sockets(self) -> None:
        for upstream in self._upstreams.values():
            upstream.close()
        self._upstreams.clear()
        if self._listener is not None:
            self._listener.close()

    # -- forwarding -----------------------------------------------------------------------

    async def _serve_clients(self, listener: TrioUdpSocket) -> None:
        while True:
            try:
                data, client = await listener.recvfrom(RECV_BUFSIZE)
            except OSError:  # an ICMP error from a vanished client: keep serving the others
                continue
            upstream = self._upstream_for(client)
            self._forward(self._to_server, upstream, self.target, data, (client, self.target))

    def _upstream_for(self, client: Address) -> TrioUdpSocket:
        upstream = self._upstreams.get(client)
        if upstream is not None:
            self._upstreams.move_to_end(client)
            return upstream
        if len(self._upstreams) >= self._max_clients:
            evicted, oldest = self._upstreams.popitem(last=False)
            oldest.close()
            self._evicted += 1
            self._to_server.reorder.forget((evicted, self.target))
            self._to_client.reorder.forget((self.target, evicted))
        upstream = TrioUdpSocket(bind_udp_socket(("127.0.0.1", 0)))
        self._upstreams[client] = upstream
        assert self._nursery is not None
        self._nursery.start_soon(self._serve_replies, upstream, client)
        return upstream

    async def _serve_replies(self, upstream: TrioUdpSocket, client: Address) -> None:
        assert self._listener is not None
        while True:
            try:
                data, source = await upstream.recvfrom(RECV_BUFSIZE)
            except trio.ClosedResourceError:  # evicted
                return
            except OSError:
                continue
            if source == self.target:  # anything else is not a reply: ignore it
                link = (self.target, client)
                self._forward(self._to_client, self._listener, client, data, link)

    def _forward(
        self,
        direction: _Direction,
        sock: TrioUdpSocket,
        dst: Address,
        data: bytes,
        link: tuple[Address, Address],
    ) -> None:
        now = trio.current_time()
        fate = direction.shaper.shape(data, now - self._origin)
        direction.counters.record_sent(len(data), fate)
        direction.sequence += 1
        for copy in fate.copies:
            item = (direction, sock, dst, copy.data, link, direction.sequence)
            if copy.delay <= 0:
                self._release(item)
            else:
                self._delays.push(now + copy.delay, item)

    def _release(self, item: _InFlight) -> None:
        direction, sock, dst, data, link, sequence = item
        try:
            sent = sock.try_sendto(data, dst)
        except (OSError, trio.ClosedResourceError):  # the client was evicted meanwhile
            sent = False
            cause = DropCause.UNREACHABLE
        else:
            cause = DropCause.QUEUE_FULL  # the kernel's send buffer is full
        if not sent:
            direction.counters.record_drop(cause)
            return
        reordered = direction.reorder.delivered(link, sequence)
        direction.counters.record_delivered(len(data), reordered=reordered)


# -- command line -------------------------------------------------------------------------


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return (host.strip("[]"), int(port))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rpc-chaos-proxy",
        description="Forward UDP to a target while losing, duplicating, reordering, delaying "
        "and corrupting datagrams with a seeded random stream.",
    )
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT")
    parser.add_argument("--target", type=_address, required=True, help="HOST:PORT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=None, help="seconds, then exit")
    parser.add_argument("--direction", choices=("both", "to-server", "to-client"), default="both")
    parser.add_argument("--loss", type=float, default=0.0, help="long-run loss fraction")
    parser.add_argument("--burst", type=int, default=1, help="losses come in bursts up to N")
    parser.add_argument("--dup", type=float, default=0.0, help="duplication probability")
    parser.add_argument("--reorder", type=float, default=0.0, help="hold-back probability")
    parser.add_argument("--reorder-delay", type=float, default=0.005, help="seconds held back")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to each")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra 0..J seconds")
    parser.add_argument("--corrupt", type=float, default=0.0, help="corruption probability")
    parser.add_argument("--truncate", type=float, default=0.0, help="truncation probability")
    return parser


def faults_from_args(args: argparse.Namespace) -> tuple[LinkFaults, LinkFaults]:
    """The (to_server, to_client) faults the command line asks for."""
    faults = LinkFaults(
        loss=args.loss,
        burst_max=args.burst,
        duplicate=args.dup,
        reorder=args.reorder,
        reorder_delay=args.reorder_delay,
        delay=args.delay,
        jitter=args.jitter,
        corrupt=args.corrupt,
        truncate=args.truncate,
    )
    to_server = CLEAN if args.direction == "to-client" else faults
    to_client = CLEAN if args.direction == "to-server" else faults
    return to_server, to_client


def _report(stats: ProxyStatistics) -> str:
    lines = [f"clients: {stats.clients} (evicted {stats.clients_evicted})"]
    for name, counters in (("to server", stats.to_server), ("to client", stats.to_client)):
        fields = ", ".join(f"{k}={v}" for k, v in vars(counters).items() if v)
        lines.append(f"{name}: {fields or 'nothing'}")
    return "\n".join(lines)


async def _serve(args: argparse.Namespace) -> ProxyStatistics:
    to_server, to_client = faults_from_args(args)
    async with ChaosProxy(args.target, to_server, to_client, args.seed, listen=args.listen) as p:
        print(
            f"rpc-chaos-proxy: {p.address[0]}:{p.address[1]} -> {args.target[0]}:{args.target[1]}"
        )
        sys.stdout.flush()
        duration = args.duration if args.duration is not None else float("inf")
        # Ctrl-C or a kill ends the run like the deadline does, so the report still prints.
        with trio.move_on_after(duration), trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async for _ in signals:
                break
        return p.statistics()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rpc-chaos-proxy``; prints what it did when it stops."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        stats = trio.run(_serve, args)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"rpc-chaos-proxy: {exc}", file=sys.stderr)
        return 1
    print(_report(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
