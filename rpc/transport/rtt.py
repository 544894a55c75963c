"""Round-trip time estimation and the probe timeout (RFC 9002 §5 and §6.2, RFC 6298 §2).

Every retransmission goes out under a new packet number, so each acknowledgement names exactly
one transmission and every sample is unambiguous (RFC 9002 §4.2) -- Karn's rule is never needed.
"""

from __future__ import annotations

from typing import Final

#: RFC 9002 §6.1.2: kGranularity, the timer granularity assumed of the system.
GRANULARITY: Final = 0.001
#: RFC 6298 §2.3 / RFC 9002 §5.3: alpha = 1/8, beta = 1/4.
RTT_ALPHA: Final = 0.125
RTT_BETA: Final = 0.25
#: RFC 6298 §2.3: RTO = SRTT + max(G, K * RTTVAR) with K = 4.
RTTVAR_FACTOR: Final = 4
#: RFC 9002 §6.1.2: kTimeThreshold.
TIME_THRESHOLD: Final = 9 / 8


class RttEstimator:
    """Smoothed RTT, its variation and the minimum, from samples of acknowledged packets."""

    __slots__ = ("has_sample", "latest_rtt", "min_rtt", "rttvar", "smoothed_rtt")

    def __init__(self, initial_rtt: float) -> None:
        # RFC 9002 §6.2.2: before any sample, smoothed_rtt = kInitialRtt, rttvar = kInitialRtt / 2.
        self.smoothed_rtt = initial_rtt
        self.rttvar = initial_rtt / 2
        self.latest_rtt = 0.0
        self.min_rtt = 0.0
        self.has_sample = False

    def update(self, latest_rtt: float, ack_delay: float, max_ack_delay: float) -> None:
        """Take one RTT sample; ``ack_delay`` is what the peer reported (RFC 9002 §5.3)."""
        if latest_rtt < 0.0:  # comparisons, not max()/min(): this runs once per ACK
            latest_rtt = 0.0
        self.latest_rtt = latest_rtt
        if not self.has_sample:
            self.has_sample = True
            self.min_rtt = latest_rtt
            self.smoothed_rtt = latest_rtt
            self.rttvar = latest_rtt / 2
            return
        if latest_rtt < self.min_rtt:
            self.min_rtt = latest_rtt
        # The peer's ack delay is trusted only up to max_ack_delay and never below min_rtt.
        if ack_delay > max_ack_delay:
            ack_delay = max_ack_delay
        adjusted = latest_rtt
        if latest_rtt >= self.min_rtt + ack_delay:
            adjusted = latest_rtt - ack_delay
        self.rttvar = (1 - RTT_BETA) * self.rttvar + RTT_BETA * abs(self.smoothed_rtt - adjusted)
        self.smoothed_rtt = (1 - RTT_ALPHA) * self.smoothed_rtt + RTT_ALPHA * adjusted

    def pto_base(self, max_ack_delay: float, min_pto: float) -> float:
        """RFC 9002 §6.2.1: smoothed_rtt + max(4 * rttvar, kGranularity) + max_ack_delay."""
        variation = RTTVAR_FACTOR * self.rttvar
        if variation < GRANULARITY:
            variation = GRANULARITY
        pto = self.smoothed_rtt + variation + max_ack_delay
        return pto if pto > min_pto else min_pto

    def loss_delay(self) -> float:
        """RFC 9002 §6.1.2: kTimeThreshold (9/8) * max(smoothed_rtt, latest_rtt), >= granularity."""
        return max(TIME_THRESHOLD * max(self.smoothed_rtt, self.latest_rtt), GRANULARITY)

