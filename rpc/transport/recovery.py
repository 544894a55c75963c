"""Sent packets, loss detection, probe timeouts and NewReno congestion control (RFC 9002).

Only ack-eliciting packets are tracked (pure ACKs are never retransmitted and never in flight).
``sent`` is a dict in packet-number order, so acknowledgement and loss detection touch only the
packets they concern: no scan of the whole window per ACK.
"""

from __future__ import annotations

from typing import Final

from rpc.transport.fragments import OutgoingMessage
from rpc.transport.rtt import TIME_THRESHOLD, RttEstimator

#: RFC 9002 §6.1.1: kPacketThreshold, reordering tolerated before a packet is declared lost.
PACKET_THRESHOLD: Final = 3
#: Upper bound of the adapted packet threshold (RFC 9002 §6.1.1 allows a larger threshold
#: after observed reordering; RFC 8985 §6.2.4 adapts its reordering window the same way).
MAX_PACKET_THRESHOLD: Final = 32
#: Packets declared lost whose late acknowledgement is still recognised as a spurious loss.
DECLARED_LOST_REMEMBERED: Final = 32
#: RFC 9002 §7.2: kMinimumWindow is 2 * max_datagram_size.
MINIMUM_WINDOW_DATAGRAMS: Final = 2
#: RFC 9002 §7.3.1 / §B.2: kLossReductionFactor.
LOSS_REDUCTION_FACTOR: Final = 0.5


class SentPacket:
    """One ack-eliciting packet in flight: what it carried and when it left."""

    __slots__ = ("message", "offset", "packet_number", "size", "time_sent")

    def __init__(
        self,
        packet_number: int,
        time_sent: float,
        size: int,
        message: OutgoingMessage | None,
        offset: int,
    ) -> None:
        self.packet_number = packet_number
        self.time_sent = time_sent
        self.size = size
        self.message = message  # None for a PING probe
        self.offset = offset


class LossRecovery:
    """Per-peer sender state of RFC 9002: sent packets, timers and the congestion window."""

    __slots__ = (
        "bytes_in_flight",
        "congestion_window",
        "declared_lost",
        "largest_acked",
        "last_eliciting_time",
        "loss_time",
        "low_water",
        "max_ack_delay",
        "max_datagram_size",
        "max_pto",
        "max_window",
        "min_pto",
        "packet_threshold",
        "probe_blocked",
        "pto_count",
        "pto_interval",
        "recovery_start",
        "reorder_window",
        "rtt",
        "sent",
        "spurious_losses",
        "ssthresh",
    )

    def __init__(
        self,
        rtt: RttEstimator,
        max_datagram_size: int,
        initial_window: int,
        max_window: int,
        max_ack_delay: float,
        min_pto: float,
        max_pto: float,
        first_packet_number: int,
    ) -> None:
        self.rtt = rtt
        self.sent: dict[int, SentPacket] = {}
        self.low_water = first_packet_number  # no tracked packet has a smaller number
        self.largest_acked = -1
        self.loss_time: float | None = None
        self.pto_count = 0
        self.last_eliciting_time = 0.0
        self.max_datagram_size = max_datagram_size
        self.max_ack_delay = max_ack_delay
        self.min_pto = min_pto
        self.max_pto = max_pto
        self.max_window = max_window
        self.bytes_in_flight = 0
        self.congestion_window = initial_window
        self.ssthresh = float("inf")
        self.recovery_start = float("-inf")
        self.pto_interval = 0.0
        self._update_pto()
        #: RFC 9002 §6.2.2.1: the probe a timeout owes could not be sent (the anti-amplification
        #: limit of an unvalidated address), so no probe timer is armed until the owner lifts
        #: this (the peer sent more bytes, raising the limit, or was validated). A timer armed
        #: meanwhile would only find the probe blocked again.
        self.probe_blocked = False
        # Reordering tolerance, adapted when a loss turns out spurious (see _on_spurious).
        self.packet_threshold = PACKET_THRESHOLD
        self.reorder_window = 0.0  # lower bound of the time threshold's loss delay
        self.declared_lost: dict[int, tuple[float, int]] = {}  # pn -> (time sent, largest acked)
        self.spurious_losses = 0  # found since the owner last collected them (and reset it)

    # -- sending -----------------------------------------------------------------------------

    def can_send(self, size: int) -> bool:
        """RFC 9002 §7: new data only while bytes in flight stay within the window."""
        return self.bytes_in_flight + size <= self.congestion_window

    def on_packet_sent(self, packet: SentPacket) -> None:
        """Track an ack-eliciting packet that just left."""
        self.sent[packet.packet_number] = packet
        self.bytes_in_flight += packet.size
        self.last_eliciting_time = packet.time_sent

    # -- acknowledgements --------------------------------------------------------------------

    def on_ack(
        self, ranges: list[tuple[int, int]], ack_delay: float, now: float
    ) -> tuple[list[SentPacket], list[SentPacket]]:
        """Process an ACK section; return ``(newly_acked, lost)`` packets."""
        sent = self.sent
        if not sent:
            if self.declared_lost:
                self._find_spurious(ranges, now)
            return [], []
        acked: list[SentPacket] = []
        low_water = self.low_water
        for low, high in ranges:
            if low < low_water:
                low = low_water
            if high < low:
                continue
            if high - low < len(sent):
                pop = sent.pop
                for pn in range(low, high + 1):
                    packet = pop(pn, None)
                    if packet is not None:
                        acked.append(packet)
            else:
                hits = []
                for pn in sent:  # packet-number order: stop past the range
                    if pn > high:
                        break
                    if pn >= low:
                        hits.append(pn)
                acked.extend(sent.pop(pn) for pn in hits)
        if self.declared_lost:
            self._find_spurious(ranges, now)
        if not acked:
            return [], []
        # Ranges come highest first and are walked upwards, so the largest newly acknowledged
        # packet is the last one taken from the first range that acknowledged anything.
        newest = max(acked, key=_packet_number) if len(ranges) > 1 else acked[-1]
        # The cached PTO depends only on the RTT estimate and the backoff: recomputed only
        # when one of them changes (most ACKs without a new sample change neither).
        stale = self.pto_count != 0
        if newest.packet_number == ranges[0][1]:
            # RFC 9002 §5.1: a sample only when the largest acknowledged is newly acknowledged.
            self.rtt.update(now - newest.time_sent, ack_delay, self.max_ack_delay)
            stale = True
        # Only packets we really sent count: a forged huge "largest" cannot fake losses.
        if newest.packet_number > self.largest_acked:
            self.largest_acked = newest.packet_number
        self.pto_count = 0  # RFC 9002 §6.2.1: an acknowledgement resets the backoff
        if stale:
            self._update_pto()
        for packet in acked:
            self._on_acked_cc(packet)
        if sent and next(iter(sent)) < self.largest_acked:
            lost = self.detect_lost(now)
        else:
            lost = []
            self.loss_time = None  # nothing unacknowledged below the largest acknowledged
        if sent:
            self._advance_low_water()
        return acked, lost

    def _on_acked_cc(self, packet: SentPacket) -> None:
        """RFC 9002 §7.3: slow start below ssthresh, then one datagram per window (NewReno)."""
        self.bytes_in_flight -= packet.size
        if packet.time_sent <= self.recovery_start:
            return  # acknowledgements of packets sent before recovery do not grow the window
        if self.congestion_window < self.ssthresh:
            self.congestion_window += packet.size
        else:
            self.congestion_window += self.max_datagram_size * packet.size // self.congestion_window
        if self.congestion_window > self.max_window:
            self.congestion_window = self.max_window

    def _advance_low_water(self) -> None:
        sent = self.sent
        if not sent:
            return
        while self.low_water not in sent:
            self.low_water += 1

    # -- loss detection ----------------------------------------------------------------------

    def _find_spurious(self, ranges: list[tuple[int, int]], now: float) -> None:
        """Acknowledgements of packets already declared lost: they were only reordered."""
        lowest, highest = ranges[-1][0], ranges[0][1]
        hits = [
            pn
            for pn in self.declared_lost
            if lowest <= pn <= highest and any(low <= pn <= high for low, high in ranges)
        ]
        for pn in hits:
            time_sent, largest = self.declared_lost.pop(pn)
            self._on_spurious(pn, time_sent, largest, now)

    def _on_spurious(self, pn: int, time_sent: float, largest: int, now: float) -> None:
        """Widen what counts as reordering so that this delay and displacement would pass
        (RFC 8985 §6.2.4 grows its reo_wnd on a spurious retransmission, RFC 9002 §6.1 lets
        both thresholds adapt). The window never exceeds the probe timeout: past that, a probe
        is due anyway."""
        self.spurious_losses += 1
        late = (now - time_sent) * TIME_THRESHOLD
        cap = self.rtt.pto_base(self.max_ack_delay, self.min_pto)
        self.reorder_window = min(max(self.reorder_window, late), cap)
        displacement = largest - pn
        if displacement >= self.packet_threshold:
            self.packet_threshold = min(displacement + 1, MAX_PACKET_THRESHOLD)

    def detect_lost(self, now: float) -> list[SentPacket]:
        """RFC 9002 §6.1: packet- and time-threshold loss below the largest acknowledged."""
        self.loss_time = None
        loss_delay = max(self.rtt.loss_delay(), self.reorder_window)
        threshold = self.largest_acked - self.packet_threshold
        lost: list[SentPacket] = []
        for pn, packet in self.sent.items():
            if pn > self.largest_acked:
                break
            # Compare the same sum the timer uses, so a timer that fired always finds its loss.
            lost_at = packet.time_sent + loss_delay
            if pn <= threshold or lost_at <= now:
                lost.append(packet)
            else:
                self.loss_time = lost_at
                break
        if lost:
            declared = self.declared_lost
            for packet in lost:
                del self.sent[packet.packet_number]
                self.bytes_in_flight -= packet.size
                declared[packet.packet_number] = (packet.time_sent, self.largest_acked)
            while len(declared) > DECLARED_LOST_REMEMBERED:
                del declared[next(iter(declared))]  # the oldest: really lost, most likely
            self._on_congestion_event(lost[-1].time_sent, now)
            self._advance_low_water()
        return lost

    def _on_congestion_event(self, sent_time: float, now: float) -> None:
        """RFC 9002 §7.3.2: halve the window once per recovery period."""
        if sent_time <= self.recovery_start:
            return
        self.recovery_start = now
        minimum = MINIMUM_WINDOW_DATAGRAMS * self.max_datagram_size
        self.congestion_window = max(int(self.congestion_window * LOSS_REDUCTION_FACTOR), minimum)
        self.ssthresh = float(self.congestion_window)

    # -- timers ------------------------------------------------------------------------------

    def pto_duration(self) -> float:
        """The current probe timeout, backed off exponentially and capped (RFC 9002 §6.2.1)."""
        return self.pto_interval

    def _update_pto(self) -> None:
        # Cached: the timer is read after every input, the inputs change it far less often.
        base = self.rtt.pto_base(self.max_ack_delay, self.min_pto)
        self.pto_interval = min(base * (1 << min(self.pto_count, 30)), self.max_pto)

    def back_off(self, now: float) -> None:
        """A probe timeout fired at ``now``: double the next one (RFC 9002 §6.2.1).

        The probe timer restarts from ``now``: RFC 9002 §A.8 sends the probes, which restart
        it, within the timeout; here they go with the next flush, so until then a timer that
        fired late must not stay in the past and fire again.
        """
        self.pto_count += 1
        self._update_pto()
        if self.last_eliciting_time < now:
            self.last_eliciting_time = now

    def timer(self) -> float | None:
        """The earliest of the loss timer and the probe timer, or None."""
        if self.loss_time is not None:
            return self.loss_time
        if not self.sent or self.probe_blocked:
            return None
        return self.last_eliciting_time + self.pto_interval

    def oldest_in_flight(self, count: int) -> list[SentPacket]:
        """Up to ``count`` of the oldest tracked packets (what a probe retransmits)."""
        out: list[SentPacket] = []
        for packet in self.sent.values():
            out.append(packet)
            if len(out) >= count:
                break
        return out

    def clear(self) -> list[SentPacket]:
        """Forget everything in flight (the peer is gone); return what was tracked."""
        packets = list(self.sent.values())
        self.sent.clear()
        self.bytes_in_flight = 0
        self.loss_time = None
        self.declared_lost.clear()
        self.pto_count = 0
        self.probe_blocked = False
        self._update_pto()
        return packets


def _packet_number(packet: SentPacket) -> int:
    return packet.packet_number
