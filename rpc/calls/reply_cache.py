"""The server's at-most-once reply cache (design and reasoning: ``docs/rpc-layer.md``).

A call's identity is ``(session, call number)`` where a session is one client endpoint instance,
``(client address, client epoch)``. Each entry goes through the states below; transitions are a
table, and an input with no entry in it is a bug (``KeyError`` would surface in tests).

=========  ==================  =========
state      input               new state
=========  ==================  =========
RUNNING    complete(reply)     REPLIED   -- reply bytes kept for duplicates
RUNNING    complete(None)      SETTLED   -- oneway, cancelled, or deadline passed: nothing to send
REPLIED    reply_acked         SETTLED   -- the client has the reply: drop the bytes, keep a mark
=========  ==================  =========

Entries are *deleted* only when the client's ``floor`` passes them (the client promises it will
never send those call numbers again) or when the whole session is dead (client restarted, or idle
for longer than any client could still be retransmitting). They are never evicted to make room:
when the caps are reached, *new* calls are refused (``Admission.BUSY``) instead.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import heapq

Address = tuple[str, int]  # as in rpc.transport.endpoint (Contract 2)
SessionKey = tuple[Address, int]  # (client address, client endpoint epoch)

#: Bytes charged per entry on top of its reply, so that reply-less entries are bounded too
#: (a rough size of the entry object, its dict slot and its heap slot in CPython).
ENTRY_OVERHEAD = 200
#: Seconds between sweeps for expired sessions (a session lives ``session_ttl`` plus at most this).
EXPIRY_INTERVAL = 1.0


class EntryState(enum.Enum):
    """Where one call is in its life on the server."""

    RUNNING = "running"
    REPLIED = "replied"
    SETTLED = "settled"

    # Members are singletons: identity hashing is correct, and C-fast where Enum's default
    # hashes the name in Python (the transition table is looked up on every call).
    __hash__ = object.__hash__


class Admission(enum.Enum):
    """What the server should do with an arriving call."""

    NEW = "execute it"
    RUNNING = "duplicate of a running call: ignore"
    REPLAY = "duplicate of a finished call: resend the cached reply"
    SETTLED = "duplicate of a call whose reply the client has: ignore"
    STALE = "below the client's floor: ignore"
    BUSY = "caps reached: refuse with ServerBusy"


_TRANSITIONS: dict[tuple[EntryState, str], EntryState] = {
    (EntryState.RUNNING, "reply"): EntryState.REPLIED,
    (EntryState.RUNNING, "silent"): EntryState.SETTLED,
    (EntryState.REPLIED, "reply_acked"): EntryState.SETTLED,
}

#: The table above by input (each looked up by state alone: one dict lookup per transition).
_ON_REPLY = {state: new for (state, event), new in _TRANSITIONS.items() if event == "reply"}
_ON_SILENT = {state: new for (state, event), new in _TRANSITIONS.items() if event == "silent"}
_ON_REPLY_ACKED = {
    state: new for (state, event), new in _TRANSITIONS.items() if event == "reply_acked"
}

#: What :meth:`ReplyCache.begin` returns for a new call (built once: every call gets it).
_ADMIT_NEW: tuple[Admission, bytes | None] = (Admission.NEW, None)

_ADMISSION_OF_STATE = {
    EntryState.RUNNING: Admission.RUNNING,
    EntryState.REPLIED: Admission.REPLAY,
    EntryState.SETTLED: Admission.SETTLED,
}


class CacheEntry:
    """One call's entry; :meth:`ReplyCache.admit` hands it to the call, which completes it."""

    __slots__ = ("below_floor", "call_no", "message_id", "reply", "session", "state")

    def __init__(self, session: _Session, call_no: int) -> None:
        self.state = EntryState.RUNNING
        #: None once the entry is deleted (with its session): completing it then does nothing.
        self.session: _Session | None = session
        self.call_no = call_no
        self.reply: bytes | None = None
        self.message_id: int | None = None
        self.below_floor = False  # floor passed it while running: delete once it finishes


class _Session:
    __slots__ = ("addr", "closed", "entries", "floor", "heap", "key", "last_active", "running")

    def __init__(self, key: SessionKey, now: float) -> None:
        self.key = key
        self.addr = key[0]
        self.floor = 0
        self.entries: dict[int, CacheEntry] = {}
        self.heap: list[int] = []  # call numbers of entries, for O(log n) release by floor
        self.running = 0
        self.last_active = now
        #: The client closed the session: drop it as soon as nothing runs.
        self.closed = False


@dataclasses.dataclass(frozen=True)
class ReplyCacheStatistics:
    """Counters and gauges of a :class:`ReplyCache`."""

    sessions: int
    entries: int
    running: int
    bytes: int
    hits: int  # duplicates answered from the cache (REPLAY)
    duplicates_ignored: int  # duplicates of running or settled calls
    stale: int  # calls below their client's floor
    busy_refusals: int
    released: int  # entries deleted because the client's floor passed them
    evictions: int  # entries deleted with a dead or expired session
    closed_sessions: int = 0  # sessions released because their client closed them


class ReplyCache:
    """Bounded at-most-once reply cache keyed by ``(session, call number)``.

    A session idle (and with nothing running) for ``session_ttl`` seconds is dropped. When the
    session table is full, sessions idle for ``min_session_ttl`` are dropped to make room: that
    is still three times the transport's default ``peer_timeout`` (10 s), after which a client
    has given up retransmitting, so no live call loses its entry. Only then are new sessions
    refused.
    """

    def __init__(
        self,
        *,
        max_sessions: int = 4096,
        max_calls_per_session: int = 1024,
        max_bytes: int = 64 * 1024 * 1024,
        session_ttl: float = 300.0,
        min_session_ttl: float = 30.0,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_calls_per_session = max_calls_per_session
        self.max_bytes = max_bytes
        self.session_ttl = session_ttl
        self.min_session_ttl = min(min_session_ttl, session_ttl)
        self._next_expiry = 0.0
        #: The session last in ``_sessions`` (the most recently active one), if known.
        self._latest: _Session | None = None
        self._sessions: collections.OrderedDict[SessionKey, _Session] = collections.OrderedDict()
        #: The entry whose reply each unacknowledged ``(client address, message id)`` carries.
        self._by_message: dict[tuple[Address, int], CacheEntry] = {}
        self._entries = 0
        self._running = 0
        self._bytes = 0
        self._hits = 0
        self._ignored = 0
        self._stale = 0
        self._busy = 0
        self._released = 0
        self._evictions = 0
        self._closed_sessions = 0

    # -- arrivals ---------------------------------------------------------------------------

    def begin(
        self, key: SessionKey, call_no: int, floor: int, *, now: float
    ) -> tuple[Admission, bytes | None]:
        """Classify an arriving call; for ``NEW`` a RUNNING entry now exists.

        Returns the admission and, for ``REPLAY``, the cached reply bytes.
        """
        admitted = self.admit(key, call_no, floor, now)
        return _ADMIT_NEW if type(admitted) is CacheEntry else admitted  # type: ignore[return-value]

    def admit(
        self, key: SessionKey, call_no: int, floor: int, now: float
    ) -> CacheEntry | tuple[Admission, bytes | None]:
        """:meth:`begin` for the server's hot path: a new call gets its RUNNING entry (to hand
        to :meth:`complete_entry`); any other admission comes as :meth:`begin` returns it."""
        if now >= self._next_expiry:
            self.expire(now=now)
        sessions = self._sessions
        session = sessions.get(key)
        if session is None:
            if len(sessions) >= self.max_sessions:
                # Full: sessions idle longer than any client retransmits may go early.
                self.expire(now=now, ttl=self.min_session_ttl)
            if len(sessions) >= self.max_sessions:
                self._busy += 1
                return Admission.BUSY, None
            session = sessions[key] = _Session(key, now)
        else:
            if session.closed:  # a straggler the transport let through: never run it
                self._stale += 1
                return Admission.STALE, None
            session.last_active = now
            if session is not self._latest:  # already last in the expiry order otherwise
                sessions.move_to_end(key)
        self._latest = session
        entries = session.entries
        #: A settled entry released just below, recycled as this call's entry (see the end).
        spare: CacheEntry | None = None
        if floor > session.floor:
            # The client will never send call numbers below ``floor`` again: release what
            # finished below it (a sequential client passes one entry here per call).
            session.floor = floor
            heap = session.heap
            while heap and heap[0] < floor:
                below = heapq.heappop(heap)
                old = entries.get(below)
                if old is None:  # already released with its closed session
                    continue
                if old.state is EntryState.RUNNING:
                    old.below_floor = True
                    continue
                if old.reply is None and old.message_id is None:
                    # Settled (its reply acked): _delete with nothing to free but the entry,
                    # inlined for the sequential client's one release per call.
                    del entries[below]
                    old.session = None
                    self._entries -= 1
                    self._bytes -= ENTRY_OVERHEAD
                    spare = old
                else:
                    # Its reply not acked yet (the server applies a CALL's ACKs after
                    # replying to it): the floor says the client has it all the same.
                    self._delete(session, below, old)
                    old.reply = old.message_id = None
                    spare = old
                self._released += 1
        entry = entries.get(call_no)
        if entry is not None:
            admission = _ADMISSION_OF_STATE[entry.state]
            if admission is Admission.REPLAY:
                self._hits += 1
                return admission, entry.reply
            self._ignored += 1
            return admission, None
        if call_no < session.floor:
            self._stale += 1
            return Admission.STALE, None
        if (
            len(entries) >= self.max_calls_per_session
            or self._bytes + ENTRY_OVERHEAD > self.max_bytes
        ):
            self._busy += 1
            return Admission.BUSY, None
        if spare is None:
            entry = CacheEntry(session, call_no)
        else:
            # Nothing refers to a released entry any more (its call finished and no message
            # maps to it): reusing it saves building one per call for a sequential client.
            # Its reply, message id and below_floor are unset.
            entry = spare
            entry.state = EntryState.RUNNING
            entry.session = session
            entry.call_no = call_no
        entries[call_no] = entry
        heapq.heappush(session.heap, call_no)
        session.running += 1
        self._running += 1
        self._entries += 1
        self._bytes += ENTRY_OVERHEAD
        return entry

    # -- completions ------------------------------------------------------------------------

    def complete(
        self, key: SessionKey, call_no: int, reply: bytes | None, message_id: int | None = None
    ) -> None:
        """The handler finished: keep ``reply`` for duplicates (``None``: nothing to send).

        ``message_id`` is the transport message that carries the reply, if it was sent (as
        :meth:`bind_message`, in the same step).
        """
        session = self._sessions.get(key)
        entry = session.entries.get(call_no) if session is not None else None
        if entry is not None:
            self.complete_entry(entry, reply, message_id)

    def complete_entry(
        self, entry: CacheEntry, reply: bytes | None, message_id: int | None = None
    ) -> None:
        """:meth:`complete` for the entry :meth:`admit` returned (no lookups)."""
        session = entry.session
        if session is None:
            return  # the session died while the call ran
        if reply is None:
            entry.state = _ON_SILENT[entry.state]
        else:
            entry.state = _ON_REPLY[entry.state]
        session.running -= 1
        self._running -= 1
        if session.closed:
            if not session.running:
                self.drop_session(session.key)
            return
        if entry.below_floor:
            self._delete(session, entry.call_no, entry)
            self._released += 1
        elif reply is not None:
            entry.reply = reply
            self._bytes += len(reply)
            if message_id is not None:
                entry.message_id = message_id
                self._by_message[session.addr, message_id] = entry

    def bind_message(self, key: SessionKey, call_no: int, message_id: int) -> None:
        """Record the transport message id that carries the reply, to release it on ack."""
        session = self._sessions.get(key)
        entry = session.entries.get(call_no) if session is not None else None
        if entry is None or entry.state is not EntryState.REPLIED:
            return
        if entry.message_id is not None:
            self._by_message.pop((key[0], entry.message_id), None)
        entry.message_id = message_id
        self._by_message[key[0], message_id] = entry

    def reply_acked(self, addr: Address, message_id: int) -> bool:
        """The client's transport acknowledged a message; release the reply it carried."""
        entry = self._by_message.pop((addr, message_id), None)
        if entry is None:
            return False
        entry.state = _ON_REPLY_ACKED[entry.state]
        entry.message_id = None
        if entry.reply is not None:
            self._bytes -= len(entry.reply)
            entry.reply = None
        return True

    def lookup(self, key: SessionKey, call_no: int) -> CacheEntry | None:
        """The entry of one call, if the cache still has it (for a probe; no state changes)."""
        session = self._sessions.get(key)
        return None if session is None else session.entries.get(call_no)

    def reply_abandoned(self, addr: Address, message_id: int) -> None:
        """The transport gave up delivering a message: a reply it carried stays cached,
        unbound, so that a probe or a duplicate CALL has it sent again."""
        entry = self._by_message.pop((addr, message_id), None)
        if entry is not None:
            entry.message_id = None

    # -- session death ----------------------------------------------------------------------

    def drop_session(self, key: SessionKey) -> None:
        """Forget a session whose client instance is dead (it restarted with a new epoch)."""
        session = self._sessions.pop(key, None)
        if session is None:
            return
        for call_no, entry in list(session.entries.items()):
            self._delete(session, call_no, entry)
            self._evictions += 1
            if entry.state is EntryState.RUNNING:
                self._running -= 1

    def close_session(self, key: SessionKey) -> None:
        """The client closed the session (transport ``PeerClosed``): release it now.

        Safe because the client instance will never send again and its transport
        acknowledged everything it received, while the server's transport drops stragglers
        of the closed epoch (see ``docs/rpc-layer.md`` §2.2). Running calls keep their
        entries until they complete, so a handler's completion never meets a missing entry
        and a duplicate (there should be none) is still recognised while it runs.
        """
        session = self._sessions.get(key)
        if session is None:
            return
        self._closed_sessions += 1
        if not session.running:
            self.drop_session(key)
            return
        session.closed = True
        for call_no, entry in list(session.entries.items()):
            if entry.state is not EntryState.RUNNING:
                self._delete(session, call_no, entry)
                self._evictions += 1

    def expire(self, *, now: float, ttl: float | None = None) -> None:
        """Drop sessions idle for longer than ``ttl`` (``session_ttl``) with nothing running."""
        # Sweeping on every call would cost more than it frees: once per EXPIRY_INTERVAL.
        self._next_expiry = now + EXPIRY_INTERVAL
        ttl = self.session_ttl if ttl is None else ttl
        sessions = self._sessions
        for _ in range(len(sessions)):
            key, session = next(iter(sessions.items()))
            if now - session.last_active <= ttl:
                return
            if session.running:
                session.last_active = now  # still working for it: not idle
                sessions.move_to_end(key)
                self._latest = session
            else:
                self.drop_session(key)

    def _delete(self, session: _Session, call_no: int, entry: CacheEntry) -> None:
        del session.entries[call_no]
        entry.session = None
        self._entries -= 1
        self._bytes -= ENTRY_OVERHEAD + (len(entry.reply) if entry.reply is not None else 0)
        if entry.message_id is not None:
            self._by_message.pop((session.addr, entry.message_id), None)

    def statistics(self) -> ReplyCacheStatistics:
        """A snapshot of the cache's counters."""
        return ReplyCacheStatistics(
            sessions=len(self._sessions),
            entries=self._entries,
            running=self._running,
            bytes=self._bytes,
            hits=self._hits,
            duplicates_ignored=self._ignored,
            stale=self._stale,
            busy_refusals=self._busy,
            released=self._released,
            evictions=self._evictions,
            closed_sessions=self._closed_sessions,
        )
