"""A seeded, deterministic simulated datagram network on trio (usually under ``MockClock``).

Each datagram a :class:`SimSocket` sends is shaped by the :class:`~rpc.testing._faults.LinkShaper`
of its (source, destination) direction. Copies with no delay land in the receiver's bounded queue at
once; delayed copies wait in a :class:`~rpc.testing._delayline.DelayLine`, whose one task sleeps
until the earliest arrival (a trio system task, spawned on first need, so tests need no extra
nursery). Nothing polls: with ``MockClock(autojump_threshold=0)`` an idle simulated second costs
nothing.

Determinism: each direction draws from its own RNG seeded by ``(seed, src, dst)``, so the fate
of the n-th datagram on a link depends only on the seed and that link's traffic.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import trio

from rpc.testing._delayline import DelayLine
from rpc.testing._faults import (
    CLEAN,
    Address,
    Copy,
    DropCause,
    Fate,
    FaultCounters,
    FaultStatistics,
    LinkFaults,
    LinkShaper,
    ReorderDetector,
    dropped,
)

#: Default receive queue per socket, in datagrams (a kernel's UDP buffer holds a few hundred).
DEFAULT_QUEUE_LIMIT = 256
#: Default number of trace events kept (the oldest are forgotten first).
DEFAULT_TRACE_LIMIT = 10_000
#: Ports handed out for ``port=0`` binds, as the IANA dynamic range does (RFC 6335 §6).
EPHEMERAL_PORT_BASE = 49152

#: A delayed copy on its way: source, destination, data, link sequence number, trace flags.
_InFlight = tuple[Address, Address, bytes, int, str]

#: Who a fault, blackhole or partition applies to: any address (None), a host, or one address.
Selector = Address | str | None


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing the network did, ``time`` seconds after it started."""

    time: float
    kind: str  # "send", "drop" or "deliver"
    src: Address
    dst: Address
    size: int
    detail: str = ""

    def __str__(self) -> str:
        src, dst = f"{self.src[0]}:{self.src[1]}", f"{self.dst[0]}:{self.dst[1]}"
        return (
            f"{self.time:12.6f} {self.kind:<7} {src} -> {dst} {self.size}B {self.detail}".rstrip()
        )


def _matches(selector: Selector, addr: Address) -> bool:
    return selector is None or selector == addr or selector == addr[0]


def _describe(copy: Copy) -> str:
    """The trace flags of a copy that was duplicated, held back or damaged."""
    flags = (
        ("dup", copy.duplicate),
        ("held", copy.held_back),
        ("corrupt", copy.corrupted),
        ("trunc", copy.truncated),
    )
    return ",".join(name for name, on in flags if on)


def _rank(selector: Selector) -> int:
    """How specific a selector is: one address beats a host beats everything."""
    return 0 if selector is None else 1 if isinstance(selector, str) else 2


class SimNetwork:
    """A simulated datagram network with configurable faults per direction.

    ``faults`` applies to every direction without a more specific rule (:meth:`set_faults`).
    Every socket's receive queue holds at most ``queue_limit`` datagrams; arrivals beyond that
    are dropped and counted. The last ``trace_limit`` events are kept for :meth:`format_trace`.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        faults: LinkFaults = CLEAN,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        trace_limit: int = DEFAULT_TRACE_LIMIT,
    ) -> None:
        self.seed = seed
        self.queue_limit = queue_limit
        self._rules: dict[tuple[Selector, Selector], LinkFaults] = {(None, None): faults}
        self._shapers: dict[tuple[Address, Address], LinkShaper] = {}
        self._sockets: dict[Address, SimSocket] = {}
        self._partitions: set[tuple[Selector, Selector]] = set()
        self._blackholes: list[tuple[float, float, Selector, Selector]] = []
        self._counters = FaultCounters()
        self._link_counters: dict[tuple[Address, Address], FaultCounters] = {}
        self._reorder = ReorderDetector()
        self._link_sequence: dict[tuple[Address, Address], int] = {}
        # Raw tuples, turned into TraceEvents only when asked for: recording is per datagram.
        self._trace: deque[tuple[float, str, Address, Address, int, str]] = deque(
            maxlen=trace_limit
        )
        self._delays: DelayLine[_InFlight] = DelayLine(self._release)
        self._next_host = 0
        self._next_port: dict[str, int] = {}
        self._origin: float | None = None
        self._scheduler_token: trio.lowlevel.TrioToken | None = None
        # Built outside trio, the clock starts at the first socket instead.
        with contextlib.suppress(RuntimeError):
            self._origin = trio.current_time()

    # -- configuration --------------------------------------------------------------------

    def socket(
        self, address: Address | None = None, *, queue_limit: int | None = None
    ) -> SimSocket:
        """Bind a simulated socket; ``None`` picks a fresh host, port 0 a free port."""
        self.elapsed()
        addr = self._assign(address)
        if addr in self._sockets:
            raise OSError(98, f"simulated address already in use: {addr}")
        limit = self.queue_limit if queue_limit is None else queue_limit
        sock = SimSocket(self, addr, limit)
        self._sockets[addr] = sock
        return sock

    def set_faults(self, src: Selector, dst: Selector, faults: LinkFaults) -> None:
        """Apply ``faults`` to datagrams from ``src`` to ``dst`` (None matches any address).

        The most specific rule wins: an address beats a host, which beats ``None``.
        """
        self._rules[(src, dst)] = faults
        for (s, d), shaper in self._shapers.items():
            shaper.faults = self._resolve(s, d)

    def set_faults_both_ways(self, a: Selector, b: Selector, faults: LinkFaults) -> None:
        """Apply ``faults`` in both directions between ``a`` and ``b``."""
        self.set_faults(a, b, faults)
        self.set_faults(b, a, faults)

    def faults(self, src: Address, dst: Address) -> LinkFaults:
        """The faults currently applied to datagrams from ``src`` to ``dst``."""
        return self._resolve(src, dst)

    def blackhole(self, duration: float, src: Selector = None, dst: Selector = None) -> None:
        """Drop every datagram from ``src`` to ``dst`` for the next ``duration`` seconds."""
        now = self.elapsed()
        self._blackholes = [w for w in self._blackholes if w[1] > now]
        self._blackholes.append((now, now + duration, src, dst))

    def partition(self, a: Selector, b: Selector) -> None:
        """Cut ``a`` and ``b`` apart, both directions, until :meth:`heal`."""
        self._partitions.add((a, b))

    def heal(self, a: Selector = None, b: Selector = None) -> None:
        """Remove the partition between ``a`` and ``b``, or every partition when none given."""
        if a is None and b is None:
            self._partitions.clear()
        else:
            self._partitions -= {(a, b), (b, a)}

    # -- observation ----------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the network started (trio clock)."""
        now = trio.current_time()
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def statistics(self) -> FaultStatistics:
        """Counters over every link."""
        return self._counters.snapshot()

    def link_statistics(self, src: Address, dst: Address) -> FaultStatistics:
        """Counters for datagrams from ``src`` to ``dst``."""
        counters = self._link_counters.get((src, dst))
        return counters.snapshot() if counters is not None else FaultStatistics()

    def trace(self) -> tuple[TraceEvent, ...]:
        """The recorded events, oldest first (bounded by ``trace_limit``)."""
        # Rounded to the ns so traces of runs that started at different times compare equal.
        return tuple(
            TraceEvent(round(t, 9), kind, src, dst, size, detail)
            for t, kind, src, dst, size, detail in self._trace
        )

    def format_trace(self, last: int | None = None) -> str:
        """The trace (or its ``last`` events) as printable lines."""
        events = self.trace() if last is None else self.trace()[-last:]
        return "\n".join(str(event) for event in events)

    def print_trace(self, last: int | None = None, file: TextIO | None = None) -> None:
        """Print the trace, e.g. from a failing test."""
        print(self.format_trace(last), file=file if file is not None else sys.stdout)

    def sockets(self) -> Iterator[SimSocket]:
        """The open sockets."""
        return iter(list(self._sockets.values()))

    def close(self) -> None:
        """Close every socket."""
        for sock in list(self._sockets.values()):
            sock.close()

    # -- the data path --------------------------------------------------------------------

    def _send(self, data: bytes, src: Address, dst: Address) -> None:
        link = (src, dst)
        elapsed = self.elapsed()
        sequence = self._link_sequence.get(link, 0)
        self._link_sequence[link] = sequence + 1
        fate = self._fate(data, link, elapsed)
        self._counters.record_sent(len(data), fate)
        self._link(link).record_sent(len(data), fate)
        self._record(elapsed, "send", src, dst, len(data))
        if fate.drop is not None:
            self._record(elapsed, "drop", src, dst, len(data), fate.drop.value)
            return
        for copy in fate.copies:
            flags = "" if copy.is_plain else _describe(copy)
            if copy.delay <= 0:
                self._arrive(src, dst, copy.data, sequence, flags, elapsed)
            else:
                self._schedule(
                    trio.current_time() + copy.delay, src, dst, copy.data, sequence, flags
                )

    def _fate(self, data: bytes, link: tuple[Address, Address], elapsed: float) -> Fate:
        src, dst = link
        if self._partitions and any(
            (_matches(a, src) and _matches(b, dst)) or (_matches(a, dst) and _matches(b, src))
            for a, b in self._partitions
        ):
            return dropped(DropCause.PARTITION)
        if self._blackholes and any(
            start <= elapsed < end and _matches(s, src) and _matches(d, dst)
            for start, end, s, d in self._blackholes
        ):
            return dropped(DropCause.BLACKHOLE)
        shaper = self._shapers.get(link)
        if shaper is None:
            rng = random.Random(f"{self.seed}|{src[0]}:{src[1]}|{dst[0]}:{dst[1]}")
            shaper = self._shapers[link] = LinkShaper(self._resolve(src, dst), rng)
        return shaper.shape(data, elapsed)

    def _arrive(
        self,
        src: Address,
        dst: Address,
        data: bytes,
        sequence: int,
        flags: str,
        elapsed: float | None = None,
    ) -> None:
        link = (src, dst)
        if elapsed is None:
            elapsed = self.elapsed()
        sock = self._sockets.get(dst)
        if sock is None or len(sock._queue) >= sock.queue_limit:
            cause = DropCause.UNREACHABLE if sock is None else DropCause.QUEUE_FULL
            self._counters.record_drop(cause)
            self._link(link).record_drop(cause)
            self._record(elapsed, "drop", src, dst, len(data), cause.value)
            return
        reordered = self._reorder.delivered(link, sequence)
        self._counters.record_delivered(len(data), reordered=reordered)
        self._link(link).record_delivered(len(data), reordered=reordered)
        if reordered:
            flags = f"{flags},reordered" if flags else "reordered"
        self._record(elapsed, "deliver", src, dst, len(data), flags)
        sock._enqueue(data, src)

    def _schedule(
        self, when: float, src: Address, dst: Address, data: bytes, sequence: int, flags: str
    ) -> None:
        token = trio.lowlevel.current_trio_token()
        if self._scheduler_token is not token:  # first delay in this trio run: start the line
            self._scheduler_token = token
            self._delays.clear()
            trio.lowlevel.spawn_system_task(self._delays.run, name="SimNetwork delay line")
        self._delays.push(when, (src, dst, data, sequence, flags))

    def _release(self, item: _InFlight) -> None:
        self._arrive(*item)

    # -- helpers --------------------------------------------------------------------------

    def _resolve(self, src: Address, dst: Address) -> LinkFaults:
        best, best_rank = CLEAN, -1
        for (s, d), faults in self._rules.items():
            if _matches(s, src) and _matches(d, dst):
                rank = _rank(s) + _rank(d) * 3  # the destination is the more common target
                if rank > best_rank:
                    best, best_rank = faults, rank
        return best

    def _link(self, link: tuple[Address, Address]) -> FaultCounters:
        counters = self._link_counters.get(link)
        if counters is None:
            counters = self._link_counters[link] = FaultCounters()
        return counters

    def _record(
        self, elapsed: float, kind: str, src: Address, dst: Address, size: int, detail: str = ""
    ) -> None:
        if self._trace.maxlen:
            self._trace.append((elapsed, kind, src, dst, size, detail))

    def _assign(self, address: Address | None) -> Address:
        if address is None:
            n = self._next_host
            self._next_host += 1
            return (f"10.0.{n // 200}.{n % 200 + 1}", 4000)
        host, port = address
        if port == 0:
            port = self._next_port.get(host, EPHEMERAL_PORT_BASE)
            while (host, port) in self._sockets:
                port += 1
            self._next_port[host] = port + 1
        return (host, port)

    def _unbind(self, addr: Address) -> None:
        self._sockets.pop(addr, None)


class SimSocket:
    """A socket on a :class:`SimNetwork`; implements the ``DatagramSocket`` protocol.

    Sends never block (the simulated link accepts everything and decides its fate); received
    datagrams wait in a bounded queue.
    """

    def __init__(self, network: SimNetwork, address: Address, queue_limit: int) -> None:
        self.network = network
        self.queue_limit = queue_limit
        self._address = address
        self._queue: deque[tuple[bytes, Address]] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False

    def getsockname(self) -> Address:
        """The simulated address this socket is bound to."""
        return self._address

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """Wait for the next datagram (cut to ``bufsize`` bytes, as UDP does)."""
        yielded = False
        while True:
            if self._closed:
                raise trio.ClosedResourceError("simulated socket was closed")
            if self._queue:
                if yielded:
                    data, src = self._queue.popleft()
                    return data[:bufsize], src
                await trio.lowlevel.checkpoint()
            else:
                await self._lot.park()
            yielded = True

    def try_recvfrom(self, bufsize: int) -> tuple[bytes, Address] | None:
        """The next queued datagram, or None at once if there is none."""
        if self._closed:
            raise trio.ClosedResourceError("simulated socket was closed")
        if not self._queue:
            return None
        data, src = self._queue.popleft()
        return data[:bufsize], src

    async def sendto(self, data: bytes, addr: Address) -> None:
        """Send a datagram (a checkpoint, then :meth:`try_sendto`)."""
        await trio.lowlevel.checkpoint()
        self.try_sendto(data, addr)

    def try_sendto(self, data: bytes, addr: Address) -> bool:
        """Hand a datagram to the network; always succeeds (faults happen on the link)."""
        if self._closed:
            raise trio.ClosedResourceError("simulated socket was closed")
        self.network._send(bytes(data), self._address, (addr[0], addr[1]))
        return True

    def close(self) -> None:
        """Unbind; blocked receivers get ``trio.ClosedResourceError``."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self.network._unbind(self._address)
        self._lot.unpark_all()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def _enqueue(self, data: bytes, src: Address) -> None:
        self._queue.append((data, src))
        if self._lot:
            self._lot.unpark()
