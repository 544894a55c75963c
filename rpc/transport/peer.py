"""Everything the endpoint knows about one remote address: both directions of one session."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Final

from rpc.errors import BadDatagram
from rpc.transport.acks import AckTracker
from rpc.transport.compression import Compressor
from rpc.transport.config import TransportConfig
from rpc.transport.events import (
    Address,
    MessageAcked,
    MessageReceived,
    PeerUnreachable,
    SendCapacityAvailable,
    TransportEvent,
)
from rpc.transport.fragments import (
    DUPLICATE,
    MALFORMED,
    REFUSED,
    OutgoingMessage,
    Reassembler,
    ReassemblyBudget,
)
from rpc.transport.recovery import LossRecovery, SentPacket
from rpc.transport.rtt import RttEstimator
from rpc.transport.stats import Counters
from rpc.transport.wire import (
    CRC_SIZE,
    DATA_HEAD,
    FLAG_ACK,
    FLAG_COMPRESSED,
    FLAG_DATA,
    FLAG_PING,
    HEADER_SIZE,
    Datagram,
    encode_ack,
    encode_packet,
)

#: RFC 9000 §8.1: before its address is validated, send at most 3x the bytes received from it.
AMPLIFICATION_FACTOR: Final = 3
#: RFC 9002 §6.2.4: a probe timeout sends up to two ack-eliciting datagrams.
PTO_PROBES: Final = 2
#: Packets in flight examined to find PTO_PROBES distinct fragments to resend.
PROBE_SCAN: Final = 16
#: Messages whose fragments are sent in turn (round-robin); the rest wait in order. Far below
#: the receiver's reassembly_messages_per_peer default (256), so interleaving never makes it
#: refuse fragments.
INTERLEAVED_MESSAGES: Final = 8
#: ACK ranges that ride along with data: the fragment size reserves room for this many.
PIGGYBACK_ACK_RANGES: Final = 4

# What the next datagram carries (see Peer._next_content).
_NOTHING: Final = 0
_PROBE: Final = 1
_RETRANSMIT: Final = 2
_NEW: Final = 3
_PURE_ACK: Final = 4
_PING: Final = 5

Emit = Callable[[TransportEvent], None]


class Peer:
    """Sender and receiver state for one address and one incarnation (epoch) of it."""

    __slots__ = (
        "_budget",
        "acks",
        "addr",
        "blocked",
        "buffered",
        "compressor",
        "config",
        "counters",
        "deferred_acks",
        "emit",
        "epoch",
        "fragment_size",
        "heap_deadline",
        "last_activity",
        "new_queue",
        "next_pn",
        "outstanding",
        "probes",
        "progress_time",
        "reassembler",
        "recovery",
        "retired_epochs",
        "retransmit",
        "rtt",
        "scheduled",
        "validated",
    )

    def __init__(
        self,
        addr: Address,
        config: TransportConfig,
        budget: ReassemblyBudget,
        compressor: Compressor,
        emit: Emit,
        *,
        first_packet_number: int,
        validated: bool,
        now: float,
    ) -> None:
        self.addr = addr
        # Its deadline as the endpoint last computed it, and the deadline of its live entry in
        # the endpoint's timer heap (at most ``scheduled``); math.inf for none.
        self.scheduled = math.inf
        self.heap_deadline = math.inf
        self.config = config
        self.compressor = compressor
        self.emit = emit
        self._budget = budget
        self.epoch = 0  # the peer's epoch; 0 until it is first heard from
        self.retired_epochs: deque[int] = deque(maxlen=8)  # its earlier incarnations
        self.validated = validated
        self.counters = Counters()
        self.rtt = RttEstimator(config.initial_rtt)
        self.next_pn = first_packet_number
        reserved = HEADER_SIZE + encode_ack_size(PIGGYBACK_ACK_RANGES) + DATA_HEAD.size + CRC_SIZE
        self.fragment_size = config.max_datagram_size - reserved
        self.last_activity = now
        self.blocked = False  # send_message raised SendBufferFull since capacity was last reported
        self._new_session(now)

    def _new_session(self, now: float) -> None:
        """(Re)initialise the per-incarnation state: sequence spaces, queues, windows."""
        cfg = self.config
        self.acks = AckTracker(cfg.max_ack_ranges, cfg.max_ack_delay, cfg.ack_eliciting_threshold)
        self.reassembler = Reassembler(
            self._budget,
            cfg.reassembly_bytes_per_peer,
            cfg.reassembly_messages_per_peer,
            cfg.max_message_size,
            cfg.max_completed_ids,
            cfg.reassembly_timeout,
        )
        self.recovery = LossRecovery(
            self.rtt,
            cfg.max_datagram_size,
            cfg.initial_window_datagrams * cfg.max_datagram_size,
            cfg.max_window,
            cfg.max_ack_delay,
            cfg.min_pto,
            cfg.max_pto,
            self.next_pn,
        )
        self.outstanding: dict[int, OutgoingMessage] = {}  # by message id: not fully acked
        self.new_queue: deque[OutgoingMessage] = deque()  # messages with fragments never sent
        self.retransmit: deque[tuple[OutgoingMessage, int]] = deque()  # lost fragments
        self.probes: deque[tuple[OutgoingMessage | None, int]] = deque()  # owed by a PTO
        self.buffered = 0  # bytes of outstanding messages (the send buffer)
        self.progress_time = now  # liveness: last acknowledgement, or when sending started
        #: Datagrams whose ACK section the endpoint applies later (Endpoint.defer_acks).
        self.deferred_acks: list[Datagram] = []

    # -- the application side --------------------------------------------------------------

    def send_capacity(self) -> int:
        """Bytes that ``queue_message`` accepts without exceeding the send buffer."""
        return max(self.config.send_buffer_size - self.buffered, 0)

    def queue_message(
        self,
        message_id: int,
        wire: bytes,
        compressed: bool,
        now: float,
        keep_liveness_clock: bool = False,
    ) -> None:
        """Queue a message (already compressed if worthwhile) for sending.

        ``keep_liveness_clock``: the liveness clock goes on from the last acknowledgement
        instead of restarting now (a liveness probe: its silence counts from the last news).
        """
        msg = OutgoingMessage(message_id, wire, compressed, self.fragment_size)
        size = len(wire)
        if size <= self.fragment_size:
            msg.unacked = {0: -1}  # the common case: one datagram
        else:
            msg.unacked = dict.fromkeys(range(0, size, self.fragment_size), -1)
        if not self.outstanding and not keep_liveness_clock:
            self.progress_time = now  # the liveness clock starts with the first outstanding byte
        self.outstanding[message_id] = msg
        self.new_queue.append(msg)
        self.buffered += len(wire)
        self.counters.messages_sent += 1
        if compressed:
            self.counters.messages_compressed += 1

    def abandon(self) -> None:
        """Drop every outstanding message (peer restarted or forgotten) without events."""
        self.recovery.clear()
        self.outstanding.clear()
        self.new_queue.clear()
        self.retransmit.clear()
        self.probes.clear()
        self.deferred_acks.clear()  # they acknowledge what was just dropped
        self.buffered = 0
        self._report_capacity()

    def restart(self, new_epoch: int, now: float) -> None:
        """The peer came back as a new incarnation: start a fresh session with it."""
        self.abandon()
        self.reassembler.clear()
        self.retired_epochs.append(self.epoch)
        self.epoch = new_epoch
        self._new_session(now)

    # -- receiving ---------------------------------------------------------------------------

    def on_datagram(self, dgram: Datagram, size: int, now: float, process_ack: bool) -> None:
        """Process a datagram already checked for CRC, epochs and address.

        Its ACK section is left to the caller when ``process_ack`` is false (the endpoint
        defers it: see ``Endpoint.defer_acks``); it must then call :meth:`on_ack` with it.
        """
        c = self.counters
        c.datagrams_received += 1
        c.bytes_received += size
        self.last_activity = now
        if self.recovery.probe_blocked:
            self.recovery.probe_blocked = False  # more budget (or validated): probe again
        flags = dgram.flags
        if process_ack and flags & FLAG_ACK:
            self.on_ack(dgram.ack_ranges, dgram.ack_delay_us, now)
        eliciting = flags & (FLAG_DATA | FLAG_PING) != 0
        pn = dgram.packet_number
        acks = self.acks
        if acks.is_duplicate(pn):
            c.duplicate_datagrams += 1
            acks.on_duplicate(eliciting, now)
            return
        if flags & FLAG_DATA and not self._on_data(dgram, now):
            return  # refused: not acknowledged, so the sender will retransmit it
        acks.record(pn, eliciting, now)

    def on_ack(self, ranges: list[tuple[int, int]], ack_delay_us: int, now: float) -> None:
        """Apply an ACK section received at ``now``: acknowledged fragments and messages,
        RTT sample, congestion window, and loss detection."""
        recovery = self.recovery
        acked, lost = recovery.on_ack(ranges, ack_delay_us * 1e-6, now)
        if recovery.spurious_losses:
            self.counters.spurious_losses += recovery.spurious_losses
            recovery.spurious_losses = 0
        if acked:
            self.progress_time = now
            for packet in acked:
                self._fragment_acked(packet)
        if lost:
            self.counters.fast_retransmits += len(lost)
            self._requeue_lost(lost)

    def _fragment_acked(self, packet: SentPacket) -> None:
        msg = packet.message
        if msg is None or msg.unacked.pop(packet.offset, None) is None or msg.unacked:
            return
        # The last unacknowledged fragment of this message: the message is acknowledged.
        del self.outstanding[msg.message_id]
        self.buffered -= len(msg.payload)
        self.counters.messages_acked += 1
        self.emit(MessageAcked(self.addr, msg.message_id))
        self._report_capacity()

    def _report_capacity(self) -> None:
        if self.blocked and self.buffered < self.config.send_buffer_size:
            self.blocked = False
            self.emit(SendCapacityAvailable(self.addr))

    def _requeue_lost(self, lost: list[SentPacket]) -> None:
        self.counters.lost_packets += len(lost)
        for packet in lost:
            msg = packet.message
            # Only the latest transmission of a fragment counts: an older copy may be lost
            # while a probe carrying the same bytes is still in flight.
            if msg is not None and msg.unacked.get(packet.offset) == packet.packet_number:
                msg.unacked[packet.offset] = -1
                self.retransmit.append((msg, packet.offset))

    def _on_data(self, dgram: Datagram, now: float) -> bool:
        reassembler = self.reassembler
        reassembler.advance_floor(dgram.message_floor)
        compressed = dgram.flags & FLAG_COMPRESSED != 0
        result = reassembler.add(
            dgram.message_id, dgram.total_length, dgram.offset, dgram.fragment, compressed, now
        )
        if isinstance(result, bytes):
            self._deliver(result, compressed)
            return True
        if result == DUPLICATE:
            self.counters.duplicate_messages += 1
            return True  # acknowledge again: the sender evidently missed our ACK
        if result == REFUSED:
            self.counters.reassembly_dropped += 1
            return False
        if result == MALFORMED:
            self.counters.malformed_dropped += 1
            return False
        return True  # incomplete

    def _deliver(self, payload: bytes, compressed: bool) -> None:
        if compressed:
            try:
                limit = self.config.max_message_size
                payload = self.compressor.decompress_untrusted(payload, limit)
            except BadDatagram:
                self.counters.decompression_failures += 1
                return
        self.counters.messages_received += 1
        self.emit(MessageReceived(self.addr, payload, self.epoch))

    # -- timers ------------------------------------------------------------------------------

    def timer(self) -> float | None:
        """The earliest deadline of this peer, or None."""
        deadline = self.acks.ack_deadline
        recovery_timer = self.recovery.timer()
        if recovery_timer is not None and (deadline is None or recovery_timer < deadline):
            deadline = recovery_timer
        if self.outstanding:
            liveness = self.progress_time + self.config.peer_timeout
            if deadline is None or liveness < deadline:
                deadline = liveness
        if self.reassembler.partials:
            reassembly = self.reassembler.next_timeout()
            if reassembly is not None and (deadline is None or reassembly < deadline):
                deadline = reassembly
        return deadline

    def on_timer(self, now: float) -> None:
        """Run every deadline that has passed."""
        if self.outstanding and self.progress_time + self.config.peer_timeout <= now:
            self._declare_unreachable()
        recovery = self.recovery
        if recovery.loss_time is not None:
            if recovery.loss_time <= now:
                self._requeue_lost(recovery.detect_lost(now))
        else:
            probe_time = recovery.timer()  # None while nothing is in flight or probing is blocked
            if probe_time is not None and probe_time <= now:
                self._on_probe_timeout(now)
        reassembly = self.reassembler.next_timeout()
        if reassembly is not None and reassembly <= now:
            self.counters.reassembly_timeouts += self.reassembler.expire(now)

    def _on_probe_timeout(self, now: float) -> None:
        """RFC 9002 §6.2.4: back off, and resend the oldest data in flight as probes."""
        self.recovery.back_off(now)
        self.probes.clear()
        chosen: set[tuple[int, int]] = set()
        # Several packets in flight may carry the same fragment (earlier probes): pick distinct.
        for packet in self.recovery.oldest_in_flight(PROBE_SCAN):
            msg = packet.message
            if msg is None or packet.offset not in msg.unacked:
                continue
            key = (msg.message_id, packet.offset)
            if key not in chosen:
                chosen.add(key)
                self.probes.append((msg, packet.offset))
                if len(self.probes) == PTO_PROBES:
                    break
        if not self.probes:
            self.probes.append((None, 0))  # nothing left to resend: a PING still elicits an ACK

    def _declare_unreachable(self, refused: bool = False, refused_pn: int | None = None) -> None:
        pending = tuple(self.outstanding)
        unseen = () if refused_pn is None else self.unseen_messages(refused_pn)
        self.abandon()
        never_heard = self.counters.datagrams_received == 0
        self.emit(PeerUnreachable(self.addr, pending, refused, never_heard, unseen))

    def refused(self, refused_pn: int | None) -> None:
        """The network reported that nothing listens at the peer's address (ICMP); when the
        refused datagram is known, ``refused_pn`` is its packet number."""
        self._declare_unreachable(True, refused_pn)

    def unseen_messages(self, answered_pn: int) -> tuple[int, ...]:
        """Outstanding messages never sent, or first sent at or after ``answered_pn``."""
        return tuple(
            message_id
            for message_id, msg in self.outstanding.items()
            if msg.first_pn < 0 or msg.first_pn >= answered_pn
        )

    # -- sending -----------------------------------------------------------------------------

    def build(self, now: float, epoch: int, out: list[tuple[bytes, Address]]) -> int:
        """Append every datagram this peer may send now to ``out``; return how many."""
        built = 0
        while True:
            kind, msg, offset = self._next_content(now)
            if kind == _NOTHING:
                return built
            if not self._send(kind, msg, offset, now, epoch, out):
                return built + self._send_while_unvalidated(kind, now, epoch, out)
            built += 1

    def send_owed_ack(self, now: float, epoch: int, out: list[tuple[bytes, Address]]) -> None:
        """Append the owed ACK, if any, without waiting for the ack delay (closing)."""
        if self.acks.eliciting_unacked:
            self._send(_PURE_ACK, None, 0, now, epoch, out)

    def _send_while_unvalidated(
        self, kind: int, now: float, epoch: int, out: list[tuple[bytes, Address]]
    ) -> int:
        """Anti-amplification held data back: send what may still go out; return how many.

        A PING (small, ack-eliciting) makes the peer acknowledge, and its ACK carries our epoch,
        which validates the address; without it a server could wait forever for a client that
        has nothing more to send. An owed ACK is exempt from the limit: it answers datagrams
        received and is smaller than they were. When even the PING is refused, no probe timer
        is armed until the peer sends more (RFC 9002 §6.2.2.1, LossRecovery.probe_blocked).
        """
        if kind == _PROBE or not self.recovery.sent:
            if self._send(_PING, None, 0, now, epoch, out):
                return 1
            self.recovery.probe_blocked = True
        if self._ack_due(now):
            self._send(_PURE_ACK, None, 0, now, epoch, out)
            return 1
        return 0

    def _next_content(self, now: float) -> tuple[int, OutgoingMessage | None, int]:
        """Choose what the next datagram carries, without committing to it."""
        if self.probes:
            msg, offset = self.probes[0]
            if msg is not None and msg.unacked.get(offset) is None:
                return _PROBE, None, 0  # acknowledged meanwhile: probe with a PING instead
            return _PROBE, msg, offset
        can_send = self.recovery.can_send(self.config.max_datagram_size)
        retransmit = self.retransmit
        while retransmit:
            msg, offset = retransmit[0]
            if msg.unacked.get(offset) == -1:
                if can_send:
                    return _RETRANSMIT, msg, offset
                break
            retransmit.popleft()  # acknowledged meanwhile (a probe got through)
        if self.new_queue and can_send:
            msg = self.new_queue[0]
            return _NEW, msg, msg.next_offset
        if self._ack_due(now):
            return _PURE_ACK, None, 0
        return _NOTHING, None, 0

    def _ack_due(self, now: float) -> bool:
        acks = self.acks
        deadline = acks.ack_deadline
        return acks.eliciting_unacked > 0 and deadline is not None and deadline <= now

    def _send(
        self,
        kind: int,
        msg: OutgoingMessage | None,
        offset: int,
        now: float,
        epoch: int,
        out: list[tuple[bytes, Address]],
    ) -> bool:
        """Encode and emit one datagram; False if anti-amplification forbids it."""
        acks = self.acks
        c = self.counters
        flags = 0
        ranges: list[list[int]] | None = None
        delay_us = 0
        if acks.eliciting_unacked:  # an ACK is owed: it rides on whatever we send
            ranges = acks.ranges
            if len(ranges) > 1:
                if not self.validated:
                    # One range (50 bytes) stays within 3x the smallest datagram that elicits
                    # it (33 bytes); 32 ranges (298 bytes) would let spoofed PINGs amplify 9x.
                    ranges = ranges[:1]
                elif kind != _PURE_ACK:
                    ranges = ranges[:PIGGYBACK_ACK_RANGES]
            delay_us = int((now - acks.largest_time) * 1_000_000 + 0.5)  # rounded
            if delay_us < 0:
                delay_us = 0
            flags = FLAG_ACK
        pn = self.next_pn
        if msg is not None:
            payload = msg.payload
            fragment = payload[offset : offset + msg.fragment_size]
            flags |= FLAG_DATA | msg.flags
            floor = next(iter(self.outstanding))
            datagram = encode_packet(
                flags, epoch, self.epoch, pn, ranges, delay_us,
                msg.message_id, floor, len(payload), offset, fragment,
            )  # fmt: skip
        else:
            if kind in (_PROBE, _PING):
                flags |= FLAG_PING
            datagram = encode_packet(
                flags, epoch, self.epoch, pn, ranges, delay_us, 0, 0, 0, 0, b""
            )
        size = len(datagram)
        if (
            not self.validated
            and kind != _PURE_ACK
            and c.bytes_sent + size > AMPLIFICATION_FACTOR * c.bytes_received
        ):
            c.amplification_limited += 1
            return False
        self._commit(kind, msg, c)
        self.next_pn = pn + 1
        out.append((datagram, self.addr))
        if ranges is not None:
            acks.on_ack_sent()
        if kind == _PURE_ACK:
            c.acks_sent += 1
        else:
            if msg is not None:
                msg.unacked[offset] = pn
                if msg.first_pn < 0:
                    msg.first_pn = pn
            self.recovery.on_packet_sent(SentPacket(pn, now, size, msg, offset))
        c.datagrams_sent += 1
        c.bytes_sent += size
        return True

    def _commit(self, kind: int, msg: OutgoingMessage | None, c: Counters) -> None:
        """Take the chosen content off its queue."""
        if kind == _PROBE:
            self.probes.popleft()
            c.probes_sent += 1
            if msg is not None:
                c.retransmissions += 1
        elif kind == _PING:
            if self.probes:
                self.probes.popleft()  # the PING stands in for a probe held back
            c.probes_sent += 1
        elif kind == _RETRANSMIT:
            self.retransmit.popleft()
            c.retransmissions += 1
        elif kind == _NEW and msg is not None:
            msg.next_offset += msg.fragment_size
            queue = self.new_queue
            queue.popleft()
            if msg.next_offset < len(msg.payload) and queue:
                # Round-robin among the first INTERLEAVED_MESSAGES: a short message queued
                # behind a large one goes out within a few datagrams instead of after all of
                # it (head-of-line blocking). Bounded, so the receiver holds few partials.
                queue.insert(min(len(queue), INTERLEAVED_MESSAGES - 1), msg)
            elif msg.next_offset < len(msg.payload):
                queue.append(msg)


def encode_ack_size(ranges: int) -> int:
    """Size of an ACK section with ``ranges`` ranges."""
    return len(encode_ack([(0, 0)], 0)) + 8 * (ranges - 1)
