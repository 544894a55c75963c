"""Splitting messages into fragments, and bounded reassembly of received fragments.

Reassembly never allocates from a declared size: fragments are kept as the (immutable) received
buffers and joined once when the last one arrives. Budgets are *reserved* from the declared total
when a message's first fragment arrives, so a hostile sender exhausts only its own budget, and a
message that was admitted can always complete.
"""

from __future__ import annotations

from typing import Final

from rpc.transport.wire import FLAG_COMPRESSED, MIN_FRAGMENT_SIZE


class OutgoingMessage:
    """One message being sent: its wire bytes and which fragments are still unacknowledged."""

    __slots__ = (
        "first_pn", "flags", "fragment_size", "message_id", "next_offset", "payload", "unacked",
    )

    def __init__(self, message_id: int, payload: bytes, compressed: bool, fragment_size: int):
        self.message_id = message_id
        self.payload = payload
        self.flags = FLAG_COMPRESSED if compressed else 0
        self.fragment_size = fragment_size
        self.next_offset = 0  # first byte never sent yet
        # offset -> packet number of its latest transmission (-1: queued, not yet sent)
        self.unacked: dict[int, int] = {}
        #: Packet number of its first transmission (-1: never sent). A restarted peer's epoch
        #: notice names a datagram its new incarnation received: a message first sent at or
        #: after it never reached the old one (Endpoint._on_epoch_notice).
        self.first_pn = -1

    def fragment(self, offset: int) -> bytes:
        """The bytes of the fragment starting at ``offset``."""
        return self.payload[offset : offset + self.fragment_size]


class ReassemblyBudget:
    """Bytes reserved by incomplete messages of all peers together."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class _Partial:
    __slots__ = ("compressed", "fragments", "last_time", "received", "total")

    def __init__(self, total: int, compressed: bool, now: float) -> None:
        self.total = total
        self.compressed = compressed
        self.fragments: dict[int, memoryview | bytes] = {}
        self.received = 0
        self.last_time = now


#: Smallest fragment an honest sender puts anywhere but at the end of a message: its datagrams
#: are at least MIN_DATAGRAM_SIZE (256) bytes, less the worst-case header, piggy-backed ack, data
#: head and CRC (98 bytes). Shorter non-final fragments are refused as malformed, so an incomplete
#: message holds at most total / MIN_FRAGMENT + 1 fragments and their bookkeeping (a few hundred
#: bytes each) stays within a few times the bytes it reserved (acceptance scenario 12).
MIN_FRAGMENT: Final = 128

#: Completed-id sets at least this large are pruned when the sender's floor advances; after a
#: prune, the next one waits until the set has doubled (see Reassembler.advance_floor).
PRUNE_AT: Final = 32

#: Results of :meth:`Reassembler.add` other than a completed payload.
INCOMPLETE: Final = 0  # stored; more fragments needed
#: Message already delivered (or fragment already held): acknowledge, deliver nothing.
DUPLICATE: Final = 1
REFUSED: Final = 2  # over a limit: drop without acknowledging, so the sender retransmits later
MALFORMED: Final = 3  # inconsistent with earlier fragments: drop


class Reassembler:
    """Incomplete and completed messages from one peer."""

    __slots__ = (
        "budget",
        "byte_limit",
        "completed",
        "floor",
        "max_completed",
        "max_message_size",
        "max_messages",
        "partials",
        "prune_at",
        "reserved",
        "timeout",
    )

    def __init__(
        self,
        budget: ReassemblyBudget,
        byte_limit: int,
        max_messages: int,
        max_message_size: int,
        max_completed: int,
        timeout: float,
    ) -> None:
        self.budget = budget
        self.byte_limit = byte_limit
        self.max_messages = max_messages
        self.max_message_size = max_message_size
        self.max_completed = max_completed
        self.timeout = timeout
        self.reserved = 0
        self.floor = 0  # every message id below this is finished (from the sender's floor)
        self.completed: set[int] = set()  # delivered ids (and, until a prune, some below floor)
        self.partials: dict[int, _Partial] = {}  # ordered by last activity, oldest first
        self.prune_at = min(PRUNE_AT, max_completed)  # size of ``completed`` that prunes it

    def advance_floor(self, floor: int) -> None:
        """The sender will never (re)send messages below ``floor``: forget them."""
        if floor <= self.floor:
            return
        self.floor = floor
        # Amortised: the floor advances with nearly every datagram, and with n messages in
        # flight the set holds about n live ids. Rebuilding it only once it has doubled since
        # the last rebuild costs about two set operations per id, instead of n per advance.
        if len(self.completed) >= self.prune_at:
            self._prune()
        stale = [mid for mid in self.partials if mid < floor] if self.partials else ()
        for mid in stale:
            self._discard(mid)

    def is_duplicate(self, message_id: int) -> bool:
        """True if ``message_id`` was already delivered."""
        return message_id < self.floor or message_id in self.completed

    def add(
        self,
        message_id: int,
        total: int,
        offset: int,
        fragment: memoryview | bytes,
        compressed: bool,
        now: float,
    ) -> int | bytes:
        """Store one fragment; return the whole message when complete, else a status code."""
        if message_id < self.floor or message_id in self.completed:
            return DUPLICATE
        if total > self.max_message_size:
            return MALFORMED
        if len(fragment) < MIN_FRAGMENT and offset + len(fragment) != total:
            return MALFORMED  # one-byte fragments would cost ~300x their size in bookkeeping
        if offset == 0 and len(fragment) == total:  # a single-datagram message: no buffering
            if len(self.completed) >= self.max_completed and not self._room_for(message_id):
                return REFUSED
            self.completed.add(message_id)
            return bytes(fragment)
        if len(fragment) < MIN_FRAGMENT_SIZE and offset + len(fragment) < total:
            # Only a message's last fragment may be short: this bounds the bookkeeping held per
            # reserved byte (a flood of 1-byte fragments cannot exhaust memory).
            return MALFORMED
        partial = self.partials.pop(message_id, None)
        if partial is None:
            partial = self._admit(message_id, total, compressed, now)
            if partial is None:
                return REFUSED
        self.partials[message_id] = partial  # re-inserted: now the most recently active
        if partial.total != total or partial.compressed != compressed:
            return MALFORMED
        if offset in partial.fragments:
            return DUPLICATE
        if isinstance(fragment, memoryview) and 2 * len(fragment) < fragment_source_size(fragment):
            # Keeping a view would keep the whole datagram alive for a small piece of it.
            fragment = bytes(fragment)
        partial.fragments[offset] = fragment
        partial.received += len(fragment)
        partial.last_time = now
        if partial.received < total:
            return INCOMPLETE
        return self._finish(message_id, partial)

    def _admit(self, message_id: int, total: int, compressed: bool, now: float) -> _Partial | None:
        if (
            len(self.partials) >= self.max_messages
            or self.reserved + total > self.byte_limit
            or self.budget.used + total > self.budget.limit
            or not self._room_for(message_id)
        ):
            return None
        self.reserved += total
        self.budget.used += total
        return _Partial(total, compressed, now)

    def _finish(self, message_id: int, partial: _Partial) -> int | bytes:
        self._discard(message_id)
        expected = 0
        pieces = []
        for offset in sorted(partial.fragments):
            if offset != expected:
                return MALFORMED  # overlapping fragments from a broken or hostile sender
            piece = partial.fragments[offset]
            pieces.append(piece)
            expected += len(piece)
        if expected != partial.total:
            return MALFORMED
        return self._complete(message_id, b"".join(pieces))

    def _room_for(self, message_id: int) -> bool:
        """Whether the completed-id table may grow by ``message_id``.

        When it is full, only an id below every remembered one is let in: that is the sender's
        oldest outstanding message, which must be able to complete so that its floor advances
        and the table shrinks. The hard bound is twice the configured size.
        """
        count = len(self.completed)
        if count < self.max_completed:
            return True
        self._prune()  # ids below the floor, left by the amortised pruning, do not count
        count = len(self.completed)
        if count < self.max_completed:
            return True
        return count < 2 * self.max_completed and message_id < min(self.completed)

    def _prune(self) -> None:
        """Forget completed ids below the floor; the next prune waits until the set doubles."""
        floor = self.floor
        self.completed = {mid for mid in self.completed if mid >= floor}
        self.prune_at = min(max(PRUNE_AT, 2 * len(self.completed)), self.max_completed)

    def _complete(self, message_id: int, payload: bytes) -> bytes:
        self.completed.add(message_id)
        return payload

    def _discard(self, message_id: int) -> None:
        partial = self.partials.pop(message_id)
        self.reserved -= partial.total
        self.budget.used -= partial.total

    def next_timeout(self) -> float | None:
        """When the least recently active incomplete message expires."""
        for partial in self.partials.values():
            return partial.last_time + self.timeout
        return None

    def expire(self, now: float) -> int:
        """Discard incomplete messages idle for the timeout; return how many."""
        expired = [mid for mid, p in self.partials.items() if p.last_time + self.timeout <= now]
        for mid in expired:
            self._discard(mid)
        return len(expired)

    def clear(self) -> None:
        """Release every reservation (the peer is being dropped)."""
        for mid in list(self.partials):
            self._discard(mid)
        self.completed.clear()


def fragment_source_size(view: memoryview) -> int:
    """Size of the whole buffer a fragment view points into."""
    source = view.obj
    return len(source) if isinstance(source, bytes | bytearray) else view.nbytes
