"""What a faulty link does to one datagram: the fault model shared by the simulator and the proxy.

:class:`LinkFaults` describes one direction of a link. A :class:`LinkShaper` holds that
direction's state (its seeded random stream, an ongoing loss burst, the Gilbert-Elliott channel
state) and turns each datagram into a :class:`Fate`: dropped for a reason, or delivered as one or
more copies, each after its own delay and possibly damaged. It reads no clock: the caller passes
the elapsed time, so :mod:`rpc.testing._simnet` (trio's clock, usually a ``MockClock``) and
:mod:`rpc.testing.chaos_proxy` (real time) make their decisions with the same code.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from dataclasses import dataclass
from typing import NamedTuple

Address = tuple[str, int]


class DropCause(enum.Enum):
    """Why a datagram never arrived."""

    LOSS = "loss"  # random loss, including the rest of a loss burst
    BLACKHOLE = "blackhole"  # sent during a blackhole period
    PARTITION = "partition"  # the two ends are partitioned
    QUEUE_FULL = "queue_full"  # the receiver's bounded queue was full on arrival
    UNREACHABLE = "unreachable"  # nobody listens at the destination address


@dataclass(frozen=True)
class GilbertElliott:
    """A two-state burst-loss channel (Gilbert 1960, Elliott 1963).

    Before each datagram the channel moves from good to bad with probability ``p`` and from bad
    to good with probability ``r``; a datagram is then lost with probability ``loss_good`` or
    ``loss_bad`` depending on the state. Mean burst length is ``1 / r``.
    """

    p: float = 0.05
    r: float = 0.5
    loss_good: float = 0.0
    loss_bad: float = 1.0


@dataclass(frozen=True)
class LinkFaults:
    """The faults one direction of a link applies, each with its own probability.

    ``loss`` is the long-run fraction of datagrams lost; with ``burst_max > 1`` losses come in
    bursts of 1..``burst_max`` consecutive datagrams (uniformly), and the start probability is
    lowered so that the long-run fraction stays ``loss``. ``gilbert`` adds a Gilbert-Elliott
    channel on top. ``duplicate`` sends an extra copy (with its own delay). ``reorder`` holds a
    datagram back by an extra ``reorder_delay`` so that later ones overtake it. Every datagram
    waits ``delay`` plus a uniform ``0..jitter``. ``corrupt`` flips 1..``corrupt_max_bytes``
    random bytes anywhere in the datagram; ``truncate`` cuts it to a random shorter length.
    ``blackholes`` are ``(start, end)`` windows, in seconds since the network or proxy started,
    during which everything is dropped.
    """

    loss: float = 0.0
    burst_max: int = 1
    gilbert: GilbertElliott | None = None
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.005
    delay: float = 0.0
    jitter: float = 0.0
    corrupt: float = 0.0
    corrupt_max_bytes: int = 3
    truncate: float = 0.0
    blackholes: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt", "truncate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LinkFaults.{name} must be a probability, got {value!r}")
        if self.loss >= 1.0 and self.burst_max > 1:
            raise ValueError("LinkFaults.loss must be below 1 when burst_max > 1")
        if self.burst_max < 1 or self.corrupt_max_bytes < 1:
            raise ValueError("LinkFaults.burst_max and corrupt_max_bytes must be at least 1")
        if min(self.delay, self.jitter, self.reorder_delay) < 0:
            raise ValueError("LinkFaults delays must not be negative")

    @property
    def is_clean(self) -> bool:
        """True when this link delivers everything at once, untouched."""
        return self == CLEAN

    def replace(self, **changes: object) -> LinkFaults:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


CLEAN = LinkFaults()


class Copy(NamedTuple):
    """One copy of a datagram that will arrive ``delay`` seconds after it was sent.

    (Named tuples, not frozen dataclasses, because one is built per datagram: construction is
    several times cheaper.)
    """

    delay: float
    data: bytes
    duplicate: bool = False
    held_back: bool = False
    corrupted: bool = False
    truncated: bool = False

    @property
    def is_plain(self) -> bool:
        """True for an untouched original (no duplicate, hold-back or damage)."""
        return not (self.duplicate or self.held_back or self.corrupted or self.truncated)


class Fate(NamedTuple):
    """What happens to one datagram: dropped (``drop`` set, no copies) or delivered as copies."""

    drop: DropCause | None
    copies: tuple[Copy, ...]


def dropped(cause: DropCause) -> Fate:
    """The fate of a datagram that never arrives."""
    return Fate(cause, ())


class LinkShaper:
    """Applies :class:`LinkFaults` to the datagrams of one direction, with its own seeded RNG.

    One shaper per direction keeps each link's random stream independent of traffic on other
    links, so the fate of the n-th datagram on a link does not depend on how tasks interleave.
    """

    def __init__(self, faults: LinkFaults, rng: random.Random) -> None:
        self._faults = faults
        self._clean = faults.is_clean
        self._rng = rng
        self._burst_left = 0
        self._gilbert_bad = False

    @property
    def faults(self) -> LinkFaults:
        """The faults applied from now on (may be changed at any time)."""
        return self._faults

    @faults.setter
    def faults(self, faults: LinkFaults) -> None:
        self._faults = faults
        self._clean = faults.is_clean  # cached: comparing dataclasses per datagram is slow

    def shape(self, data: bytes, elapsed: float) -> Fate:
        """Decide the fate of ``data`` sent ``elapsed`` seconds after the origin."""
        if self._clean:
            return Fate(None, (Copy(0.0, data),))
        faults = self._faults
        if _in_windows(faults.blackholes, elapsed):
            return dropped(DropCause.BLACKHOLE)
        if self._lost(faults):
            return dropped(DropCause.LOSS)
        copies = [self._copy(data, duplicate=False)]
        if faults.duplicate and self._rng.random() < faults.duplicate:
            copies.append(self._copy(data, duplicate=True))
        return Fate(None, tuple(copies))

    def _lost(self, faults: LinkFaults) -> bool:
        rng = self._rng
        if faults.gilbert is not None and self._gilbert_lost(faults.gilbert):
            return True
        if self._burst_left > 0:
            self._burst_left -= 1
            return True
        if not faults.loss or rng.random() >= _burst_start_probability(faults):
            return False
        self._burst_left = rng.randint(1, faults.burst_max) - 1
        return True

    def _gilbert_lost(self, ge: GilbertElliott) -> bool:
        rng = self._rng
        flip = ge.r if self._gilbert_bad else ge.p
        if rng.random() < flip:
            self._gilbert_bad = not self._gilbert_bad
        return rng.random() < (ge.loss_bad if self._gilbert_bad else ge.loss_good)

    def _copy(self, data: bytes, *, duplicate: bool) -> Copy:
        faults, rng = self.faults, self._rng
        delay = faults.delay + (rng.uniform(0.0, faults.jitter) if faults.jitter else 0.0)
        held_back = bool(faults.reorder) and rng.random() < faults.reorder
        if held_back:
            delay += faults.reorder_delay
        corrupted = bool(faults.corrupt) and bool(data) and rng.random() < faults.corrupt
        if corrupted:
            data = _flip_bytes(data, rng, faults.corrupt_max_bytes)
        truncated = bool(faults.truncate) and bool(data) and rng.random() < faults.truncate
        if truncated:
            data = data[: rng.randrange(len(data))]
        return Copy(delay, data, duplicate, held_back, corrupted, truncated)


def _burst_start_probability(faults: LinkFaults) -> float:
    """Start probability q giving long-run loss fraction f with mean burst length m.

    Each decision either starts a burst (m datagrams lost) or passes one datagram, so
    f = q*m / (q*m + 1 - q), hence q = f / (m - f*(m - 1)).
    """
    mean_burst = (1 + faults.burst_max) / 2
    f = faults.loss
    return f / (mean_burst - f * (mean_burst - 1))


def _in_windows(windows: tuple[tuple[float, float], ...], t: float) -> bool:
    return any(start <= t < end for start, end in windows)


def _flip_bytes(data: bytes, rng: random.Random, max_bytes: int) -> bytes:
    """Flip 1..max_bytes random bytes anywhere in ``data`` (each to a different value)."""
    damaged = bytearray(data)
    for _ in range(rng.randint(1, max_bytes)):
        i = rng.randrange(len(damaged))
        damaged[i] ^= rng.randint(1, 255)
    return bytes(damaged)


@dataclass(frozen=True)
class FaultStatistics:
    """What a simulated network or chaos proxy did to the datagrams it carried."""

    sent: int = 0
    delivered: int = 0
    bytes_sent: int = 0
    bytes_delivered: int = 0
    dropped_loss: int = 0
    dropped_blackhole: int = 0
    dropped_partition: int = 0
    dropped_queue_full: int = 0
    dropped_unreachable: int = 0
    duplicated: int = 0
    held_back: int = 0
    reordered: int = 0  # delivered after a datagram that was sent later on the same link
    corrupted: int = 0
    truncated: int = 0
    delayed: int = 0

    @property
    def dropped(self) -> int:
        """Datagrams dropped for any reason."""
        return (
            self.dropped_loss
            + self.dropped_blackhole
            + self.dropped_partition
            + self.dropped_queue_full
            + self.dropped_unreachable
        )


_DROP_FIELD = {cause: f"dropped_{cause.value}" for cause in DropCause}


class FaultCounters:
    """Mutable counters behind :class:`FaultStatistics`."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys((f.name for f in dataclasses.fields(FaultStatistics)), 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name`` (a :class:`FaultStatistics` field)."""
        self._counts[name] += amount

    def record_sent(self, size: int, fate: Fate) -> None:
        """Count one datagram handed to the link and the faults its fate applied."""
        counts = self._counts
        counts["sent"] += 1
        counts["bytes_sent"] += size
        if fate.drop is not None:
            counts[_DROP_FIELD[fate.drop]] += 1
            return
        for copy in fate.copies:
            counts["duplicated"] += copy.duplicate
            counts["held_back"] += copy.held_back
            counts["corrupted"] += copy.corrupted
            counts["truncated"] += copy.truncated
            counts["delayed"] += copy.delay > 0

    def record_drop(self, cause: DropCause) -> None:
        """Count a datagram dropped after it left the shaper (queue full, nobody listening)."""
        self._counts[_DROP_FIELD[cause]] += 1

    def record_delivered(self, size: int, *, reordered: bool) -> None:
        """Count one copy handed to its receiver."""
        counts = self._counts
        counts["delivered"] += 1
        counts["bytes_delivered"] += size
        counts["reordered"] += reordered

    def snapshot(self) -> FaultStatistics:
        """The counters as a frozen dataclass."""
        return FaultStatistics(**self._counts)


class ReorderDetector:
    """Notices copies delivered after a copy of a datagram sent later on the same link."""

    def __init__(self) -> None:
        self._latest: dict[tuple[Address, Address], int] = {}

    def delivered(self, link: tuple[Address, Address], sequence: int) -> bool:
        """Record delivery of datagram number ``sequence``; True if it arrived out of order."""
        latest = self._latest.get(link, -1)
        if sequence < latest:
            return True
        self._latest[link] = sequence
        return False

    def forget(self, link: tuple[Address, Address]) -> None:
        """Drop the state of a link that carries no more traffic (keeps the table bounded)."""
        self._latest.pop(link, None)
