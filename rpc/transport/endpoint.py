"""The sans-I/O transport endpoint: reliable delivery of whole messages over datagrams.

Feed it datagrams (:meth:`Endpoint.receive_datagram`) and timer expiries
(:meth:`Endpoint.handle_timer`); collect datagrams to send, the next timer deadline and events.
It never reads a clock and never touches a socket (docs/design.md, Contract 2; the wire format
is in docs/protocol.md).
"""

from __future__ import annotations

import heapq
import math
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from rpc.errors import BadDatagram, InvalidArgument, MessageTooLarge, SendBufferFull
from rpc.transport.compression import Compressor
from rpc.transport.config import TransportConfig
from rpc.transport.events import (
    Address,
    PeerClosed,
    PeerRestarted,
    PeerUnreachable,
    TransportEvent,
)
from rpc.transport.fragments import ReassemblyBudget
from rpc.transport.peer import AMPLIFICATION_FACTOR, Peer
from rpc.transport.stats import (
    COUNTER_NAMES,
    SUMMED_FIELDS,
    Counters,
    EndpointStatistics,
    PeerStatistics,
)
from rpc.transport.wire import (
    FLAG_ACK,
    FLAG_DATA,
    FLAG_DRAINED,
    FLAG_PING,
    MIN_DATAGRAM,
    TYPE_CLOSE,
    TYPE_EPOCH_NOTICE,
    TYPE_PACKET,
    CrcMismatch,
    Datagram,
    decode_datagram_untrusted,
    encode_close,
    encode_epoch_notice,
    quoted_packet_number_untrusted,
)

#: Seconds between sweeps for idle peers, so a server's peer table shrinks back after its
#: clients leave (a peer lives ``peer_idle_eviction`` plus at most this; acceptance scenario 14).
IDLE_SWEEP_INTERVAL: Final = 1.0
#: Closed sessions' epochs remembered, so their stragglers and replays (from any address) are
#: dropped instead of starting a new session that would run their calls again.
CLOSED_EPOCHS: Final = 4096
#: Copies of a CLOSE sent: it is best effort (never retransmitted), a second copy survives a
#: single loss.
CLOSE_COPIES: Final = 2
#: A peer's timer fields (``scheduled``, ``heap_deadline``) when it has no deadline: a float,
#: so that the compiled core compares them without boxing.
NEVER: Final = math.inf
# Bound once, as Final: the compiled core calls them without a module or dict lookup.
_heappop: Final = heapq.heappop
_heappush: Final = heapq.heappush
_heapreplace: Final = heapq.heapreplace
#: ACK sections a deferring endpoint holds per peer at most (see ``Endpoint.defer_acks``): one
#: more and it applies them all at once, so the lists stay bounded whatever its driver does.
MAX_DEFERRED_ACKS: Final = 64
#: Stands in the epoch index for the address of a closed session: matches no real address.
_CLOSED: Final[Address] = ("", -1)
#: What the endpoint accepts as a payload or a datagram; anything but ``bytes`` is copied once.
BytesLike = bytes | bytearray | memoryview


#: The counters that belong to no peer (the fields of :class:`_EndpointCounters`).
_ENDPOINT_COUNTER_NAMES: Final = (
    "address_mismatch_drops",
    "closes_sent",
    "crc_failures",
    "epoch_notices_sent",
    "events_dropped",
    "notices_dropped",
    "peer_table_full_dropped",
    "peers_closed",
    "peers_evicted",
    "peers_restarted",
    "peers_unreachable",
    "unknown_peer_dropped",
)


class _EndpointCounters:
    """Counters that belong to no peer."""

    def __init__(self) -> None:
        self.address_mismatch_drops = 0
        self.closes_sent = 0
        self.crc_failures = 0
        self.epoch_notices_sent = 0
        self.events_dropped = 0
        self.notices_dropped = 0
        self.peer_table_full_dropped = 0
        self.peers_closed = 0
        self.peers_evicted = 0
        self.peers_restarted = 0
        self.peers_unreachable = 0
        self.unknown_peer_dropped = 0


class Endpoint:
    """Reliable, at-most-once delivery of messages to and from many peers over one socket."""

    def __init__(
        self,
        config: TransportConfig | None = None,
        *,
        accept_new_peers: bool,
        epoch: int | None = None,
    ) -> None:
        self.config = config if config is not None else TransportConfig()
        if epoch is not None and not 0 <= epoch < 2**64:
            raise InvalidArgument("epoch must be an unsigned 64-bit integer")
        #: Random 64-bit identity of this endpoint instance (never 0: 0 means "unknown").
        self.epoch = epoch if epoch else secrets.randbits(64) or 1
        self._accept_new_peers = accept_new_peers
        self._peers: dict[Address, Peer] = {}
        #: The address of every live peer whose epoch we know (a session lives at one address),
        #: and _CLOSED for the epochs of recently closed sessions (oldest first in _closed).
        self._epoch_addrs: dict[int, Address] = {}
        self._closed: deque[int] = deque()
        self._events: deque[TransportEvent] = deque()
        self._max_events = self.config.max_events
        # Peers that may have something to send (a forgotten peer is taken out at once). Keyed
        # by the Peer itself: identity hashing, where an address tuple would be hashed anew.
        self._dirty: dict[Peer, None] = {}
        # Heap of (deadline, seq, peer). A peer's live entry is the one at its heap_deadline,
        # never later than its real deadline (peer.scheduled): a deadline that moves later
        # leaves the entry where it is, and the entry is moved only when it reaches the top.
        # Other entries are superseded: skipped when popped, or compacted away.
        self._timers: list[tuple[float, int, Peer]] = []
        self._timer_seq = 0
        self._compact_at = 64  # heap size that triggers dropping superseded entries
        self._notices: deque[tuple[bytes, Address]] = deque()
        self._budget = ReassemblyBudget(self.config.reassembly_bytes_total)
        self._compressor = Compressor(
            self.config.compression_threshold, self.config.compression_level
        )
        self._next_message_id = 1
        self._pn_base = 0  # above every packet number any session of ours has used
        self._retired = Counters()  # counters of forgotten peers
        self._unattributed = Counters()  # drops that cannot be charged to a peer
        self._counters = _EndpointCounters()
        self._next_idle_sweep = 0.0
        #: When True, :meth:`receive_datagram` only records a datagram's ACK section, and
        #: :meth:`process_deferred_acks` applies it later: a driver sends its response first
        #: and does this bookkeeping when it is about to wait (docs/design.md, Contract 2).
        #: Anything that reads what the acks change applies them first (timers, the send
        #: buffer, statistics, closing), so only the order of events differs: a datagram's
        #: MessageReceived comes before the MessageAcked its ACK causes.
        self.defer_acks = False
        # Peers with datagrams in their ``deferred_acks`` (a peer that restarted or was
        # forgotten meanwhile has dropped them: they acknowledged its old session).
        self._deferring_peers: list[Peer] = []

    # -- application API ---------------------------------------------------------------------

    def send_message(
        self,
        addr: Address,
        payload: BytesLike,
        *,
        now: float,
        keep_liveness_clock: bool = False,
    ) -> int:
        """Queue ``payload`` for reliable delivery to ``addr``; return its message id.

        Raises :class:`SendBufferFull` when the peer's send buffer cannot take it (wait for
        :class:`SendCapacityAvailable`) and :class:`MessageTooLarge` above ``max_message_size``.
        With ``keep_liveness_clock`` (a liveness probe), the peer's silence is counted from its
        last acknowledgement rather than from now: a peer that stopped answering right after
        acknowledging a call is declared unreachable ``peer_timeout`` after that, not later.
        """
        config = self.config
        if type(payload) is not bytes:
            payload = bytes(payload)  # fragments are sliced and checksummed as bytes
        if len(payload) > config.max_message_size:
            raise MessageTooLarge(f"message of {len(payload)} bytes exceeds max_message_size")
        peer = self._peers.get(addr)
        if peer is None:
            peer = self._new_peer(addr, validated=True, now=now)
        if peer.buffered and peer.buffered + len(payload) > config.send_buffer_size:
            self.process_deferred_acks()  # deferred ACKs may free room
            if peer.buffered and peer.buffered + len(payload) > config.send_buffer_size:
                peer.blocked = True
                raise SendBufferFull(f"send buffer for {addr} is full")
        wire, compressed = self._compressor.compress(payload)
        message_id = self._next_message_id
        self._next_message_id += 1
        peer.queue_message(message_id, wire, compressed, now, keep_liveness_clock)
        self._dirty[peer] = None  # its timers are recomputed when it is next looked at
        return message_id

    def acknowledge_now(self, addr: Address, *, now: float) -> None:
        """Send the ACK owed to ``addr`` with the next :meth:`datagrams_to_send`, without the
        ack delay (the application knows no reply will carry it, e.g. for a oneway call)."""
        peer = self._peers.get(addr)
        if peer is None or not peer.acks.eliciting_unacked:
            return
        acks = peer.acks
        if acks.ack_deadline is None or acks.ack_deadline > now:
            acks.ack_deadline = now
        self._dirty[peer] = None

    def has_unacknowledged(self, addr: Address) -> bool:
        """True while a message to ``addr`` awaits its acknowledgement."""
        self.process_deferred_acks()
        peer = self._peers.get(addr)
        return peer is not None and bool(peer.outstanding)

    def report_refused(self, addr: Address, quoted: Sequence[bytes] = ()) -> None:
        """The network said nothing listens at ``addr`` (an ICMP port unreachable reported
        on a connected socket): give up on it at once, as after ``peer_timeout``, and forget
        it. The refusal is not authenticated; a driver reports it only for a socket connected
        to ``addr``, whose kernel matched it to that socket's own traffic.

        ``quoted`` are the first bytes of refused datagrams, as ICMP errors quote them (the
        kernel's error queue). One of this session's packets among them (its epochs must
        match) proves that nothing listened when it arrived: what was first sent at or after
        it never reached the peer's old incarnation (``PeerUnreachable.unseen_message_ids``).
        """
        self.process_deferred_acks()
        peer = self._peers.get(addr)
        if peer is None:
            return
        refused_pn: int | None = None
        for quote in quoted:
            fields = quoted_packet_number_untrusted(quote)
            if fields is None or fields[0] != self.epoch or fields[1] not in (0, peer.epoch):
                continue
            if refused_pn is None or fields[2] < refused_pn:
                refused_pn = fields[2]
        peer.refused(refused_pn)
        # Its incarnation is gone: a later message starts a fresh session, whose first
        # datagram tells whoever listens by then (a restarted server) who we are.
        self.forget_peer(addr)

    def send_capacity(self, addr: Address) -> int:
        """Bytes the send buffer of ``addr`` accepts right now."""
        self.process_deferred_acks()
        peer = self._peers.get(addr)
        return self.config.send_buffer_size if peer is None else peer.send_capacity()

    def forget_peer(self, addr: Address) -> None:
        """Drop all state of ``addr``; its outstanding messages are abandoned without events."""
        self.process_deferred_acks()  # its deferred ACKs would be dropped: others' go first
        peer = self._peers.pop(addr, None)
        if peer is None:
            return
        if self._epoch_addrs.get(peer.epoch) == addr:
            del self._epoch_addrs[peer.epoch]
        peer.blocked = False
        peer.abandon()
        peer.reassembler.clear()
        self._retired.add(peer.counters)
        peer.scheduled = NEVER
        peer.heap_deadline = NEVER  # its heap entry, if any, is superseded
        self._dirty.pop(peer, None)

    def close_peer(self, addr: Address, *, now: float, drained: bool = False) -> None:
        """End the session with ``addr`` cleanly, then forget it (like :meth:`forget_peer`).

        An owed ACK goes out at once instead of after the ack delay (so the peer stops
        resending its last message), followed by a CLOSE telling the peer to drop the session
        now. Both are best effort: sent with the next :meth:`datagrams_to_send`, never
        retransmitted. Messages not yet acknowledged are abandoned without events. Datagrams
        of the closed session arriving later are dropped, so this endpoint must not send to
        ``addr`` again under its epoch (a client reconnects with a new Endpoint). ``drained``
        promises the peer that nothing it still awaits an answer for was processed (the CLOSE
        carries FLAG_DRAINED); the application knows when that holds.
        """
        self.process_deferred_acks()
        peer = self._peers.get(addr)
        if peer is None:
            return
        out: list[tuple[bytes, Address]] = []
        peer.send_owed_ack(now, self.epoch, out)
        if peer.epoch:  # the peer knows a session with us only once we have heard from it
            close = encode_close(self.epoch, peer.epoch, drained)
            copies = CLOSE_COPIES
            if not peer.validated:
                # An unvalidated address may be a spoofed victim: the CLOSE stays within
                # the 3x anti-amplification budget like everything else (RFC 9000 §8.1).
                c = peer.counters
                budget = AMPLIFICATION_FACTOR * c.bytes_received - c.bytes_sent
                copies = max(0, min(CLOSE_COPIES, budget // len(close)))
            out.extend([(close, addr)] * copies)
            self._counters.closes_sent += copies
        self._notices.extend(out)
        self._retire_session(peer)

    def close_all_peers(
        self, *, now: float, drained: Callable[[Address], bool] | None = None
    ) -> None:
        """:meth:`close_peer` every peer (a driver does this when it closes); ``drained(addr)``
        says which sessions were drained."""
        for addr in list(self._peers):
            self.close_peer(addr, now=now, drained=drained is not None and drained(addr))

    def _retire_session(self, peer: Peer) -> None:
        """Forget ``peer`` and remember its epoch as closed (bounded)."""
        epoch = peer.epoch
        self.forget_peer(peer.addr)
        if not epoch:
            return
        self._epoch_addrs[epoch] = _CLOSED
        self._closed.append(epoch)
        if len(self._closed) > CLOSED_EPOCHS:
            oldest = self._closed.popleft()
            if self._epoch_addrs.get(oldest) == _CLOSED:
                del self._epoch_addrs[oldest]

    def next_event(self) -> TransportEvent | None:
        """The oldest pending event, or None."""
        return self._events.popleft() if self._events else None

    # -- network input -----------------------------------------------------------------------

    def receive_datagram(self, data: BytesLike, addr: Address, *, now: float) -> None:
        """Process one datagram received from ``addr``. Bad datagrams are dropped and counted."""
        if type(data) is not bytes:
            data = bytes(data)  # decoded fields are slices: they must not alias a caller's buffer
        try:
            dgram = decode_datagram_untrusted(data)
        except CrcMismatch:
            self._counters.crc_failures += 1
            return
        except BadDatagram:
            self._charge(addr).malformed_dropped += 1
            return
        peer = self._peers.get(addr)
        # The epoch index maps the epoch of every live peer to that peer's address, so when
        # the peer at ``addr`` already has this sender epoch (the common case) it agrees.
        if peer is None or dgram.sender_epoch != peer.epoch:
            home = self._epoch_addrs.get(dgram.sender_epoch)
            if home is not None and home != addr:
                if home is _CLOSED:
                    self._charge(addr).old_epoch_dropped += 1  # a straggler of a closed session
                else:
                    # A live session's datagram from elsewhere: a replay or an impostor.
                    # Trusting it would create a second peer (and re-run its calls).
                    self._counters.address_mismatch_drops += 1
                return
        if dgram.kind != TYPE_PACKET:
            if dgram.kind == TYPE_CLOSE:
                self._on_close(dgram, peer, now)
            elif dgram.kind == TYPE_EPOCH_NOTICE:
                self._on_epoch_notice(dgram, peer, now)
            return
        if dgram.receiver_epoch not in (0, self.epoch):
            # Addressed to an earlier incarnation of this endpoint: tell the sender we restarted.
            self._charge(addr).old_epoch_dropped += 1
            self._queue_notice(dgram, addr, len(data))
            return
        if peer is None:
            peer = self._admit_peer(addr, now)
            if peer is None:
                return
        if dgram.sender_epoch != peer.epoch and not self._on_sender_epoch(peer, dgram, now):
            return
        if dgram.receiver_epoch == self.epoch:
            peer.validated = True  # it echoed our epoch, so it receives at this address
        if self.defer_acks and dgram.flags & FLAG_ACK:
            dgram.received_at = now
            pending = peer.deferred_acks
            if not pending:
                self._deferring_peers.append(peer)
            pending.append(dgram)
            peer.on_datagram(dgram, len(data), now, False)
            if len(pending) > MAX_DEFERRED_ACKS:
                self.process_deferred_acks()
        else:
            if self._deferring_peers:  # ACKs are applied in the order they arrived
                self.process_deferred_acks()
            peer.on_datagram(dgram, len(data), now, True)
        self._dirty[peer] = None  # its timers are recomputed when it is next looked at

    def process_deferred_acks(self) -> bool:
        """Apply the ACK sections :meth:`receive_datagram` deferred (see :attr:`defer_acks`),
        in arrival order and each at its arrival time; True if there were any.

        A driver calls it before it waits for input, then takes the events and datagrams it
        caused (acknowledged messages, fast retransmissions) as after any input.
        """
        peers = self._deferring_peers
        if not peers:
            return False
        dirty = self._dirty
        for peer in peers:
            pending = peer.deferred_acks
            if not pending:
                continue  # dropped with the session they acknowledged
            for dgram in pending:
                peer.on_ack(dgram.ack_ranges, dgram.ack_delay_us, dgram.received_at)
            pending.clear()
            if peer.retransmit or peer.new_queue:  # lost fragments, or room for new ones
                dirty[peer] = None
            elif peer not in dirty:
                self._reschedule(peer)  # its timers only: nothing of it to send
        peers.clear()
        return True

    def _charge(self, addr: Address) -> Counters:
        peer = self._peers.get(addr)
        return self._unattributed if peer is None else peer.counters

    def _admit_peer(self, addr: Address, now: float) -> Peer | None:
        """State for a new address, if this endpoint accepts new peers and has room."""
        if not self._accept_new_peers:
            self._counters.unknown_peer_dropped += 1
            return None
        if now >= self._next_idle_sweep:
            self._forget_idle_peers(now)
        if len(self._peers) >= self.config.max_peers and not self._evict_idle_peer(now):
            self._counters.peer_table_full_dropped += 1
            return None
        return self._new_peer(addr, validated=False, now=now)

    def _new_peer(self, addr: Address, *, validated: bool, now: float) -> Peer:
        peer = Peer(
            addr,
            self.config,
            self._budget,
            self._compressor,
            self._emit,
            first_packet_number=self._pn_base,
            validated=validated,
            now=now,
        )
        self._peers[addr] = peer
        return peer

    def _forget_idle_peers(self, now: float) -> None:
        """Forget every peer idle for ``peer_idle_eviction`` (swept when new peers arrive,
        at most once per ``IDLE_SWEEP_INTERVAL``, as the reply cache sweeps its sessions)."""
        self._next_idle_sweep = now + IDLE_SWEEP_INTERVAL
        horizon = now - self.config.peer_idle_eviction
        idle = [p.addr for p in self._peers.values() if _idle_since(p, horizon)]
        for addr in idle:
            self.forget_peer(addr)
        self._counters.peers_evicted += len(idle)

    def _evict_idle_peer(self, now: float) -> bool:
        """Forget the least recently active idle peer, if one has been idle long enough."""
        horizon = now - self.config.peer_idle_eviction
        idle = [p for p in self._peers.values() if _idle_since(p, horizon)]
        if not idle:
            return False
        self.forget_peer(min(idle, key=_last_activity).addr)
        self._counters.peers_evicted += 1
        return True

    def _on_sender_epoch(self, peer: Peer, dgram: Datagram, now: float) -> bool:
        """A datagram whose sender epoch differs from the one we know; False to drop it."""
        new_epoch = dgram.sender_epoch
        if peer.epoch == 0:
            peer.epoch = new_epoch  # first contact
            self._epoch_addrs[new_epoch] = peer.addr
            return True
        if new_epoch in peer.retired_epochs:
            peer.counters.old_epoch_dropped += 1  # a late datagram from an earlier incarnation
            return False
        self._restart_peer(peer, new_epoch, now)
        return True

    def _restart_peer(
        self, peer: Peer, new_epoch: int, now: float, answered_pn: int | None = None
    ) -> None:
        """``answered_pn``: the datagram the new incarnation's epoch notice answered."""
        old_epoch = peer.epoch
        # Without a notice, only what was never sent is known to be unseen.
        unseen = peer.unseen_messages(peer.next_pn if answered_pn is None else answered_pn)
        if self._epoch_addrs.get(old_epoch) == peer.addr:
            del self._epoch_addrs[old_epoch]
        self._epoch_addrs[new_epoch] = peer.addr
        peer.restart(new_epoch, now)
        if self._accept_new_peers:
            peer.validated = False  # a new incarnation proves its address afresh
        self._counters.peers_restarted += 1
        self._emit(PeerRestarted(peer.addr, old_epoch, new_epoch, unseen))
        self._reschedule(peer)

    def _on_epoch_notice(self, dgram: Datagram, peer: Peer | None, now: float) -> None:
        """The peer says it does not know the epoch we addressed: it restarted."""
        if peer is None or dgram.receiver_epoch != self.epoch:
            # Not about a session of ours (or about an earlier incarnation of this endpoint).
            counters = self._unattributed if peer is None else peer.counters
            counters.old_epoch_dropped += 1
            return
        new_epoch = dgram.sender_epoch
        if new_epoch == peer.epoch or new_epoch in peer.retired_epochs:
            return  # stale notice, or about a datagram from before we learned its epoch
        # 0 names no packet (older senders send 0; so may a notice answering packet 0): then
        # only what was never sent is known to be unseen.
        self._restart_peer(peer, new_epoch, now, dgram.packet_number or None)

    def _on_close(self, dgram: Datagram, peer: Peer | None, now: float) -> None:
        """The peer ends its session with us: drop its state at once."""
        if peer is None or dgram.sender_epoch != peer.epoch or dgram.receiver_epoch != self.epoch:
            counters = self._unattributed if peer is None else peer.counters
            counters.old_epoch_dropped += 1  # about no session of ours
            return
        self._retire_session(peer)
        self._counters.peers_closed += 1
        drained = dgram.flags & FLAG_DRAINED != 0
        self._emit(PeerClosed(peer.addr, dgram.sender_epoch, drained))

    def _queue_notice(self, dgram: Datagram, addr: Address, size: int) -> None:
        """Answer an ack-eliciting datagram for an old epoch with an epoch notice.

        The notice is never larger than what provoked it, so it cannot amplify anything.
        """
        if not dgram.flags & (FLAG_DATA | FLAG_PING) or size < MIN_DATAGRAM:
            return
        if len(self._notices) >= self.config.max_notices:
            self._counters.notices_dropped += 1
            return
        notice = encode_epoch_notice(self.epoch, dgram.sender_epoch, dgram.packet_number)
        self._notices.append((notice, addr))
        self._counters.epoch_notices_sent += 1

    # -- timers ------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must be called, or None.

        While ACKs are deferred it may be earlier than it will be once they are applied
        (a retransmission timeout they cancel): a wake-up for it finds nothing due.
        """
        if self._dirty:
            self._reschedule_dirty()
        timers = self._timers
        while timers:
            deadline, _, peer = timers[0]
            if deadline == peer.heap_deadline:
                scheduled = peer.scheduled
                if scheduled == deadline:
                    return deadline
                if scheduled != NEVER:
                    # Its deadline moved later since the entry was pushed: move the entry.
                    self._timer_seq += 1
                    _heapreplace(timers, (scheduled, self._timer_seq, peer))
                    peer.heap_deadline = scheduled
                    continue
                peer.heap_deadline = NEVER
            _heappop(timers)  # superseded entry
        return None

    def handle_timer(self, *, now: float) -> None:
        """Run every peer deadline that is due at ``now``."""
        self.process_deferred_acks()  # a deferred ACK may have settled what a timer would resend
        if self._dirty:
            self._reschedule_dirty()
        timers = self._timers
        due: list[Peer] = []
        while timers and timers[0][0] <= now:
            deadline, _, peer = _heappop(timers)
            if deadline != peer.heap_deadline:
                continue  # superseded
            peer.heap_deadline = NEVER
            scheduled = peer.scheduled
            if scheduled == NEVER:
                continue
            if scheduled > now:  # moved later since the entry was pushed: not due yet
                self._push_timer(peer, scheduled)
                continue
            peer.scheduled = NEVER
            due.append(peer)
        for peer in due:
            peer.on_timer(now)
            self._dirty[peer] = None
            self._reschedule(peer)

    def _reschedule_dirty(self) -> None:
        """Recompute the deadlines of peers touched since (they stay marked for sending)."""
        for peer in self._dirty:
            self._reschedule(peer)

    def _reschedule(self, peer: Peer) -> None:
        deadline = peer.timer()
        if deadline is None:
            peer.scheduled = NEVER
            return
        peer.scheduled = deadline
        if deadline < peer.heap_deadline:  # a later deadline keeps the earlier entry
            self._push_timer(peer, deadline)

    def _push_timer(self, peer: Peer, deadline: float) -> None:
        self._timer_seq += 1
        timers = self._timers
        _heappush(timers, (deadline, self._timer_seq, peer))
        peer.heap_deadline = deadline
        if len(timers) > self._compact_at:
            self._compact_timers()

    def _compact_timers(self) -> None:
        live = [entry for entry in self._timers if entry[2].heap_deadline == entry[0]]
        heapq.heapify(live)
        self._timers = live
        self._compact_at = 4 * len(live) + 64

    # -- network output ----------------------------------------------------------------------

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Address]]:
        """Every datagram that should be sent now, with its destination."""
        if not self._dirty and not self._notices:
            return []
        out: list[tuple[bytes, Address]] = []
        if self._notices:
            out.extend(self._notices)
            self._notices.clear()
        dirty = self._dirty
        self._dirty = {}
        epoch = self.epoch
        for peer in dirty:
            if peer.build(now, epoch, out) and peer.next_pn > self._pn_base:
                self._pn_base = peer.next_pn
            self._reschedule(peer)
        return out

    # -- events and statistics ---------------------------------------------------------------

    def _emit(self, event: TransportEvent) -> None:
        if len(self._events) >= self._max_events:
            self._counters.events_dropped += 1
            return
        if type(event) is PeerUnreachable:
            self._counters.peers_unreachable += 1
        self._events.append(event)

    def statistics(self) -> EndpointStatistics:
        """Totals over all peers, current and forgotten."""
        self.process_deferred_acks()
        totals = Counters()
        totals.add(self._retired)
        totals.add(self._unattributed)
        for peer in self._peers.values():
            totals.add(peer.counters)
        summed = {name: getattr(totals, name) for name in SUMMED_FIELDS}
        own = {name: getattr(self._counters, name) for name in _ENDPOINT_COUNTER_NAMES}
        return EndpointStatistics(peers=len(self._peers), **summed, **own)

    def peer_statistics(self, addr: Address) -> PeerStatistics | None:
        """A snapshot of one peer, or None if it is unknown."""
        self.process_deferred_acks()
        peer = self._peers.get(addr)
        if peer is None:
            return None
        c = peer.counters
        rtt = peer.rtt
        recovery = peer.recovery
        return PeerStatistics(
            addr=addr,
            peer_epoch=peer.epoch,
            validated=peer.validated,
            **{name: getattr(c, name) for name in COUNTER_NAMES},
            smoothed_rtt=rtt.smoothed_rtt,
            rttvar=rtt.rttvar,
            min_rtt=rtt.min_rtt,
            latest_rtt=rtt.latest_rtt,
            pto=recovery.pto_duration(),
            congestion_window=recovery.congestion_window,
            bytes_in_flight=recovery.bytes_in_flight,
            send_buffer_bytes=peer.buffered,
            reassembly_bytes=peer.reassembler.reserved,
        )


def _idle_since(peer: Peer, horizon: float) -> bool:
    """True if ``peer`` has nothing in flight or half-received and was last heard before."""
    return peer.last_activity <= horizon and not peer.outstanding and not peer.reassembler.partials


def _last_activity(peer: Peer) -> float:
    return peer.last_activity


__all__ = ["Endpoint", "MessageTooLarge", "SendBufferFull", "TransportConfig"]
