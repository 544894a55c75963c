"""Received packet numbers, and when to acknowledge them (RFC 9000 §13.2).

Ranges are kept highest first as ``[low, high]`` lists, bounded in number: the lowest range is
forgotten when there are too many, and everything at or below it then counts as a duplicate
(the sender retransmits under new packet numbers, so nothing is lost by that).
"""

from __future__ import annotations


class AckTracker:
    """Which packet numbers arrived from one peer, and whether an ACK is owed."""

    __slots__ = (
        "ack_deadline",
        "eliciting_unacked",
        "floor",
        "largest_time",
        "max_ack_delay",
        "max_ranges",
        "ranges",
        "threshold",
    )

    def __init__(self, max_ranges: int, max_ack_delay: float, threshold: int) -> None:
        self.ranges: list[list[int]] = []
        self.floor = 0  # packet numbers below this are treated as duplicates
        self.max_ranges = max_ranges
        self.max_ack_delay = max_ack_delay
        self.threshold = threshold
        self.eliciting_unacked = 0  # ack-eliciting packets received since the last ACK sent
        self.ack_deadline: float | None = None  # when the owed ACK must go out
        self.largest_time = 0.0  # arrival time of the largest packet number (for ack delay)

    def is_duplicate(self, pn: int) -> bool:
        """True if ``pn`` was received before (or is too old to tell)."""
        ranges = self.ranges
        if not ranges or pn > ranges[0][1]:
            return False  # the common case: a new highest packet number
        if pn < self.floor:
            return True
        return any(low <= pn <= high for low, high in ranges)

    def on_duplicate(self, ack_eliciting: bool, now: float) -> None:
        """A duplicate arrived: our ACK may have been lost, so send one soon (RFC 9000 §13.2.1)."""
        if ack_eliciting and self.ranges:
            self.eliciting_unacked += 1
            self._owe_ack(now, immediately=False)

    def record(self, pn: int, ack_eliciting: bool, now: float) -> None:
        """Record a packet number that :meth:`is_duplicate` said is new."""
        ranges = self.ranges
        if ranges and pn == ranges[0][1] + 1:  # the common case: next in order
            ranges[0][1] = pn
            in_order = True
        else:
            in_order = not ranges  # the very first packet starts the sequence
            self._insert(pn)
        if ranges[0][1] == pn:
            self.largest_time = now
        if ack_eliciting:
            self.eliciting_unacked += 1
            # RFC 9000 §13.2.1: out-of-order arrival (a gap or a fill) is acknowledged at once.
            self._owe_ack(now, immediately=not in_order)

    def _owe_ack(self, now: float, *, immediately: bool) -> None:
        if immediately or self.eliciting_unacked >= self.threshold:
            self.ack_deadline = now
        elif self.ack_deadline is None:
            self.ack_deadline = now + self.max_ack_delay

    def _insert(self, pn: int) -> None:
        ranges = self.ranges
        for i, rng in enumerate(ranges):
            low, high = rng
            if pn > high + 1:
                ranges.insert(i, [pn, pn])
                break
            if pn == high + 1:
                rng[1] = pn
                break
            if pn >= low:
                return  # inside this range: seen before (callers check first)
            if pn == low - 1:
                rng[0] = pn
                if i + 1 < len(ranges) and ranges[i + 1][1] == pn - 1:
                    rng[0] = ranges[i + 1][0]
                    del ranges[i + 1]
                break
        else:
            ranges.append([pn, pn])
        if len(ranges) > self.max_ranges:
            dropped = ranges.pop()
            self.floor = dropped[1] + 1

    @property
    def ack_owed(self) -> bool:
        """True when ack-eliciting packets arrived since the last ACK we sent."""
        return self.eliciting_unacked > 0

    def on_ack_sent(self) -> None:
        """An ACK section covering everything received went out."""
        self.eliciting_unacked = 0
        self.ack_deadline = None

    def ack_ranges(self) -> list[tuple[int, int]]:
        """The ranges to put in an ACK section, highest first."""
        return [(low, high) for low, high in self.ranges]
