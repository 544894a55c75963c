"""Transport statistics: mutable counters inside, frozen dataclass snapshots outside."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from rpc.transport.events import Address

#: The fields of :class:`Counters`, for code that walks them by name.
COUNTER_NAMES: Final = (
    "acks_sent",
    "amplification_limited",
    "bytes_received",
    "bytes_sent",
    "datagrams_received",
    "datagrams_sent",
    "decompression_failures",
    "duplicate_datagrams",
    "duplicate_messages",
    "fast_retransmits",
    "lost_packets",
    "malformed_dropped",
    "messages_acked",
    "messages_compressed",
    "messages_received",
    "messages_sent",
    "old_epoch_dropped",
    "probes_sent",
    "reassembly_dropped",
    "reassembly_timeouts",
    "retransmissions",
    "spurious_losses",
)


class Counters:
    """Per-peer counters, bumped on the hot path (plain slots attributes, no locking)."""

    __slots__ = COUNTER_NAMES

    def __init__(self) -> None:
        self.acks_sent = 0
        self.amplification_limited = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.datagrams_received = 0
        self.datagrams_sent = 0
        self.decompression_failures = 0
        self.duplicate_datagrams = 0
        self.duplicate_messages = 0
        self.fast_retransmits = 0
        self.lost_packets = 0
        self.malformed_dropped = 0
        self.messages_acked = 0
        self.messages_compressed = 0
        self.messages_received = 0
        self.messages_sent = 0
        self.old_epoch_dropped = 0
        self.probes_sent = 0
        self.reassembly_dropped = 0
        self.reassembly_timeouts = 0
        self.retransmissions = 0
        self.spurious_losses = 0

    def add(self, other: Counters) -> None:
        """Accumulate ``other`` into this one (used when a peer is forgotten)."""
        for name in COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class TrafficTotals:
    """The per-peer traffic counters, as frozen fields shared by both snapshots."""

    datagrams_sent: int
    datagrams_received: int
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    messages_acked: int
    messages_compressed: int
    acks_sent: int
    retransmissions: int
    fast_retransmits: int
    probes_sent: int
    lost_packets: int
    #: Packets declared lost whose original was acknowledged later: reordering, not loss.
    spurious_losses: int
    duplicate_datagrams: int
    duplicate_messages: int
    old_epoch_dropped: int
    malformed_dropped: int
    decompression_failures: int
    reassembly_dropped: int
    reassembly_timeouts: int
    amplification_limited: int


@dataclass(frozen=True, slots=True)
class PeerStatistics(TrafficTotals):
    """A snapshot of one peer: traffic counters and current estimates."""

    addr: Address
    peer_epoch: int
    validated: bool
    smoothed_rtt: float
    rttvar: float
    min_rtt: float
    latest_rtt: float
    pto: float
    congestion_window: int
    bytes_in_flight: int
    send_buffer_bytes: int
    reassembly_bytes: int


@dataclass(frozen=True, slots=True)
class EndpointStatistics(TrafficTotals):
    """A snapshot of a whole endpoint: totals over current and forgotten peers."""

    peers: int
    #: Datagrams dropped because their sender epoch belongs to a live peer at another address.
    address_mismatch_drops: int
    crc_failures: int
    unknown_peer_dropped: int
    peer_table_full_dropped: int
    peers_evicted: int
    peers_unreachable: int
    peers_restarted: int
    #: Peers that closed their session with a CLOSE, and CLOSE datagrams we sent.
    peers_closed: int
    closes_sent: int
    epoch_notices_sent: int
    notices_dropped: int
    events_dropped: int


#: EndpointStatistics fields that are sums of the per-peer counters.
SUMMED_FIELDS = tuple(f.name for f in fields(TrafficTotals))

__all__ = ["Counters", "EndpointStatistics", "PeerStatistics"]
