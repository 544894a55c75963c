"""A virtual network for sans-I/O transport tests: two endpoints, a virtual clock, faults.

Pure Python, no trio: datagrams travel through a heap ordered by arrival time; a seeded random
drops, duplicates, reorders (extra delay) and corrupts them, and counts every fault it injects so
tests can assert the faults really happened.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import Address, MessageAcked, MessageReceived, TransportEvent

CLIENT: Address = ("10.0.0.1", 40000)
SERVER: Address = ("10.0.0.2", 50000)


@dataclass
class Faults:
    """Probabilities of each fault per datagram, and the one-way delay range (seconds)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # chance of an extra delay of up to reorder_delay
    corrupt: float = 0.0
    delay: tuple[float, float] = (0.001, 0.001)
    reorder_delay: float = 0.01


@dataclass
class FaultCounts:
    """How many faults the network actually injected."""

    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0


@dataclass
class Net:
    """Moves datagrams between a client endpoint and a server endpoint on a virtual clock."""

    client: Endpoint
    server: Endpoint
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    now: float = 0.0
    counts: FaultCounts = field(default_factory=FaultCounts)
    events: dict[Address, list[TransportEvent]] = field(default_factory=dict)
    wire_log: list[tuple[float, Address, bytes]] = field(default_factory=list)
    blackhole: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._queue: list[tuple[float, int, bytes, Address, Address]] = []
        self._seq = 0
        self.events = {CLIENT: [], SERVER: []}

    @classmethod
    def pair(
        cls, config: TransportConfig | None = None, faults: Faults | None = None, seed: int = 0
    ) -> Net:
        """A client (accepts no new peers) and a server endpoint with the same config."""
        client = Endpoint(config, accept_new_peers=False, epoch=0xC11E47)
        server = Endpoint(config, accept_new_peers=True, epoch=0x5E4E4)
        return cls(client, server, faults or Faults(), seed)

    def endpoint(self, addr: Address) -> Endpoint:
        return self.client if addr == CLIENT else self.server

    def flush(self) -> int:
        """Take every datagram both endpoints want to send now and put it on the wire."""
        sent = 0
        for src, ep in ((CLIENT, self.client), (SERVER, self.server)):
            for data, dst in ep.datagrams_to_send(now=self.now):
                self.wire_log.append((self.now, src, data))
                self._transmit(data, src, dst)
                sent += 1
        return sent

    def _transmit(self, data: bytes, src: Address, dst: Address) -> None:
        f, rng, c = self.faults, self.rng, self.counts
        c.sent += 1
        if self.blackhole or rng.random() < f.loss:
            c.dropped += 1
            return
        copies = 1
        if rng.random() < f.duplicate:
            c.duplicated += 1
            copies = 2
        for _ in range(copies):
            payload = data
            if rng.random() < f.corrupt:
                c.corrupted += 1
                pos = rng.randrange(len(data))
                flipped = data[pos] ^ (1 << rng.randrange(8))
                payload = data[:pos] + bytes([flipped]) + data[pos + 1 :]
            delay = rng.uniform(*f.delay)
            if rng.random() < f.reorder:
                c.reordered += 1
                delay += rng.uniform(0, f.reorder_delay)
            self._seq += 1
            heapq.heappush(self._queue, (self.now + delay, self._seq, payload, src, dst))

    def next_time(self) -> float | None:
        times = [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times) if times else None

    def step(self) -> bool:
        """Advance to the next arrival or timer and process it; False when nothing is left."""
        when = self.next_time()
        if when is None:
            return False
        self.now = max(self.now, when)
        while self._queue and self._queue[0][0] <= self.now:
            _, _, data, src, dst = heapq.heappop(self._queue)
            self.endpoint(dst).receive_datagram(data, src, now=self.now)
        for ep in (self.client, self.server):
            timer = ep.get_timer()
            if timer is not None and timer <= self.now:
                ep.handle_timer(now=self.now)
        self.flush()
        self.collect()
        return True

    def deliver_all(self) -> None:
        """Deliver what is on the wire now, without running timers."""
        while self._queue:
            _, _, data, src, dst = heapq.heappop(self._queue)
            self.endpoint(dst).receive_datagram(data, src, now=self.now)
        self.collect()

    def collect(self) -> None:
        for addr, ep in ((CLIENT, self.client), (SERVER, self.server)):
            while (event := ep.next_event()) is not None:
                self.events[addr].append(event)

    def run(self, until: float, stop: object = None) -> None:
        """Step until virtual time ``until`` or until nothing is pending."""
        steps = 0
        while self.step():
            steps += 1
            assert steps < 2_000_000, "simulation does not converge"
            if self.now >= until:
                return

    def received(self, addr: Address) -> list[bytes]:
        return [e.payload for e in self.events[addr] if isinstance(e, MessageReceived)]

    def acked(self, addr: Address) -> list[int]:
        return [e.message_id for e in self.events[addr] if isinstance(e, MessageAcked)]

    def on_wire(self) -> int:
        return len(self._queue)


def transfer(
    src: Endpoint,
    src_addr: Address,
    dst: Endpoint,
    *,
    now: float,
    drop: frozenset[int] = frozenset(),
) -> list[bytes]:
    """Hand ``src``'s pending datagrams to ``dst`` at ``now``, except those whose index is in
    ``drop``; return every datagram ``src`` produced (dropped ones included)."""
    out = [data for data, _ in src.datagrams_to_send(now=now)]
    for index, data in enumerate(out):
        if index not in drop:
            dst.receive_datagram(data, src_addr, now=now)
    return out


def drain(endpoint: Endpoint) -> list[TransportEvent]:
    """Every pending event of ``endpoint``."""
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return events
