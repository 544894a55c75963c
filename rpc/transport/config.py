"""Tunable limits and timers of the transport (:class:`TransportConfig`).

Defaults follow RFC 9002 and RFC 6298 where those give a number; the rest are chosen for a
request/response workload and cited in ``docs/protocol.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rpc.errors import InvalidArgument

#: RFC 9000 §14: a UDP payload of 1200 bytes crosses any IPv6 path and practically every IPv4 one.
DEFAULT_MAX_DATAGRAM_SIZE: Final = 1200
#: Largest UDP payload over IPv4 (65535 - 20 IP header - 8 UDP header), used on loopback and LANs.
MAX_UDP_PAYLOAD: Final = 65507
#: RFC 791: every IPv4 host accepts 576-byte datagrams; it leaves room for a fragment of at least
#: rpc.transport.wire.MIN_FRAGMENT_SIZE bytes beside a full header and piggy-backed ACK.
MIN_DATAGRAM_SIZE: Final = 576


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Limits and timers of one :class:`rpc.transport.endpoint.Endpoint` (all times in seconds)."""

    #: Largest datagram this endpoint sends (UDP payload bytes, header and CRC included).
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE
    #: Largest message (uncompressed) accepted from ``send_message`` or from a peer.
    max_message_size: int = 16 * 1024 * 1024
    #: Bytes queued or unacknowledged per peer before ``send_message`` raises SendBufferFull.
    send_buffer_size: int = 8 * 1024 * 1024
    #: RFC 9002 §6.2.2: the RTT assumed before the first sample.
    initial_rtt: float = 0.333
    #: Floor of the probe timeout, so loss on loopback costs milliseconds (RFC 6298 §2.4 allows it).
    min_pto: float = 0.002
    #: Cap of the exponentially backed-off probe timeout (RFC 6298 §5.5 permits an upper bound).
    max_pto: float = 1.0
    #: RFC 9000 §13.2.1 max_ack_delay; kept short so a reply normally carries the call's ack.
    max_ack_delay: float = 0.005
    #: RFC 9000 §13.2.2: acknowledge at least every second ack-eliciting datagram.
    ack_eliciting_threshold: int = 2
    #: A peer with data outstanding and no ack for this long is reported unreachable.
    peer_timeout: float = 10.0
    #: RFC 9002 §7.2 initial window, in datagrams (the byte window is this times the size).
    initial_window_datagrams: int = 10
    #: Upper bound of the congestion window, in bytes.
    max_window: int = 64 * 1024 * 1024
    #: Payloads at least this large are compressed when compression makes them smaller.
    compression_threshold: int = 1024
    #: zstd level: 1 is fast enough for hundreds of MB/s.
    compression_level: int = 1
    #: Peers held at once; a new address beyond this is dropped (or replaces an idle peer).
    max_peers: int = 4096
    #: A peer with nothing in flight and no traffic for this long may be replaced when full.
    peer_idle_eviction: float = 60.0
    #: Reassembly bytes held per peer and for all peers together.
    reassembly_bytes_per_peer: int = 32 * 1024 * 1024
    reassembly_bytes_total: int = 256 * 1024 * 1024
    #: Incomplete messages held per peer.
    reassembly_messages_per_peer: int = 256
    #: An incomplete message that gets no new fragment for this long is discarded. Keep it above
    #: peer_timeout + max_pto: a live sender resends at least every max_pto, and one that gave
    #: up did so after peer_timeout; a shorter value can discard fragments already acknowledged
    #: while a blackhole outlasts it, and that message is then never delivered.
    reassembly_timeout: float = 30.0
    #: SACK ranges remembered (and sent) per peer.
    max_ack_ranges: int = 32
    #: Completed message ids remembered per peer above the sender's floor (duplicate suppression).
    max_completed_ids: int = 65536
    #: Events queued before new ones are dropped (and counted).
    max_events: int = 1_000_000
    #: Stateless epoch notices queued before new ones are dropped (and counted).
    max_notices: int = 256

    def __post_init__(self) -> None:
        if not MIN_DATAGRAM_SIZE <= self.max_datagram_size <= MAX_UDP_PAYLOAD:
            raise InvalidArgument(
                f"max_datagram_size must be in [{MIN_DATAGRAM_SIZE}, {MAX_UDP_PAYLOAD}]"
            )
        positive = {
            "max_message_size": self.max_message_size,
            "send_buffer_size": self.send_buffer_size,
            "initial_rtt": self.initial_rtt,
            "min_pto": self.min_pto,
            "peer_timeout": self.peer_timeout,
            "initial_window_datagrams": self.initial_window_datagrams,
            "max_peers": self.max_peers,
            "max_ack_ranges": self.max_ack_ranges,
            "ack_eliciting_threshold": self.ack_eliciting_threshold,
            "reassembly_timeout": self.reassembly_timeout,
            "reassembly_messages_per_peer": self.reassembly_messages_per_peer,
            "max_completed_ids": self.max_completed_ids,
            "max_events": self.max_events,
        }
        for name, value in positive.items():
            if value <= 0:
                raise InvalidArgument(f"{name} must be positive")
        if self.max_pto < self.min_pto:
            raise InvalidArgument("max_pto must not be below min_pto")
        if self.max_ack_delay < 0:
            raise InvalidArgument("max_ack_delay must not be negative")
        if self.max_message_size >= 2**32:
            raise InvalidArgument("max_message_size must fit the 32-bit length field")
        if self.max_ack_ranges > 255:
            raise InvalidArgument("max_ack_ranges must fit the 8-bit range count")


__all__ = ["DEFAULT_MAX_DATAGRAM_SIZE", "MAX_UDP_PAYLOAD", "TransportConfig"]
