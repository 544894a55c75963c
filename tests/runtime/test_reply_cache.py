"""The at-most-once reply cache: states, release by floor and by ack, caps, expiry."""

from __future__ import annotations

from rpc.calls.reply_cache import ENTRY_OVERHEAD, Admission, ReplyCache

ADDR = ("10.0.0.1", 4000)
KEY = (ADDR, 77)


def test_new_call_then_duplicate_while_running_is_not_executed() -> None:
    cache = ReplyCache()
    assert cache.begin(KEY, 1, 0, now=0.0) == (Admission.NEW, None)
    assert cache.begin(KEY, 1, 0, now=0.1) == (Admission.RUNNING, None)
    stats = cache.statistics()
    assert (stats.running, stats.duplicates_ignored) == (1, 1)


def test_duplicate_of_finished_call_gets_the_cached_reply() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.complete(KEY, 1, b"reply")
    assert cache.begin(KEY, 1, 0, now=1.0) == (Admission.REPLAY, b"reply")
    stats = cache.statistics()
    assert (stats.hits, stats.running, stats.bytes) == (1, 0, ENTRY_OVERHEAD + 5)


def test_acked_reply_frees_bytes_but_still_recognises_duplicates() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.complete(KEY, 1, b"reply")
    cache.bind_message(KEY, 1, message_id=40)
    assert cache.reply_acked(ADDR, 40)
    assert not cache.reply_acked(ADDR, 40)
    assert cache.statistics().bytes == ENTRY_OVERHEAD
    assert cache.begin(KEY, 1, 0, now=1.0) == (Admission.SETTLED, None)


def test_rebinding_a_replayed_reply_tracks_the_new_message() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.complete(KEY, 1, b"r")
    cache.bind_message(KEY, 1, message_id=1)
    cache.bind_message(KEY, 1, message_id=2)
    assert not cache.reply_acked(ADDR, 1)
    assert cache.reply_acked(ADDR, 2)


def test_floor_releases_finished_entries_and_makes_older_calls_stale() -> None:
    cache = ReplyCache()
    for call_no in (1, 2, 3):
        cache.begin(KEY, call_no, 0, now=0.0)
    cache.complete(KEY, 1, b"a")
    cache.complete(KEY, 2, None)
    assert cache.begin(KEY, 4, 3, now=0.0)[0] is Admission.NEW
    stats = cache.statistics()
    assert (stats.released, stats.entries) == (2, 2)
    assert cache.begin(KEY, 1, 3, now=0.0) == (Admission.STALE, None)
    assert cache.begin(KEY, 2, 0, now=0.0) == (Admission.STALE, None)  # floor never falls


def test_running_entry_below_floor_is_kept_until_it_finishes() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.begin(KEY, 2, 2, now=0.0)
    assert cache.begin(KEY, 1, 2, now=0.0) == (Admission.RUNNING, None)
    cache.complete(KEY, 1, b"late")
    assert cache.statistics().entries == 1
    assert cache.begin(KEY, 1, 2, now=0.0) == (Admission.STALE, None)


def test_call_arriving_before_a_lower_floor_report_is_still_new() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 7, 5, now=0.0)
    assert cache.begin(KEY, 5, 5, now=0.0)[0] is Admission.NEW
    assert cache.begin(KEY, 6, 4, now=0.0)[0] is Admission.NEW


def test_per_session_cap_refuses_new_calls_instead_of_evicting() -> None:
    cache = ReplyCache(max_calls_per_session=2)
    cache.begin(KEY, 1, 0, now=0.0)
    cache.begin(KEY, 2, 0, now=0.0)
    assert cache.begin(KEY, 3, 0, now=0.0) == (Admission.BUSY, None)
    assert cache.begin(KEY, 1, 0, now=0.0)[0] is Admission.RUNNING  # old entries intact
    assert cache.begin((ADDR, 78), 1, 0, now=0.0)[0] is Admission.NEW  # other clients unaffected
    assert cache.statistics().busy_refusals == 1


def test_session_and_byte_caps_refuse_new_calls() -> None:
    cache = ReplyCache(max_sessions=1, max_bytes=ENTRY_OVERHEAD + 10)
    cache.begin(KEY, 1, 0, now=0.0)
    assert cache.begin((ADDR, 78), 1, 0, now=0.0)[0] is Admission.BUSY
    cache.complete(KEY, 1, b"0123456789")
    assert cache.begin(KEY, 2, 0, now=0.0)[0] is Admission.BUSY
    assert cache.statistics().busy_refusals == 2


def test_idle_session_expires_only_when_nothing_runs() -> None:
    cache = ReplyCache(session_ttl=10.0)
    other = (ADDR, 1)
    cache.begin(KEY, 1, 0, now=0.0)
    cache.begin(other, 1, 0, now=0.0)
    cache.complete(other, 1, b"x")
    cache.expire(now=11.0)
    stats = cache.statistics()
    assert (stats.sessions, stats.evictions) == (1, 1)
    assert cache.begin(KEY, 1, 0, now=11.0)[0] is Admission.RUNNING


def test_dropped_session_forgets_everything_and_late_completion_is_harmless() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.begin(KEY, 2, 0, now=0.0)
    cache.complete(KEY, 2, b"r")
    cache.bind_message(KEY, 2, 9)
    cache.drop_session(KEY)
    cache.complete(KEY, 1, b"late")
    assert not cache.reply_acked(ADDR, 9)
    stats = cache.statistics()
    assert (stats.sessions, stats.entries, stats.running, stats.bytes) == (0, 0, 0, 0)
    assert stats.evictions == 2


def test_full_session_table_makes_room_from_sessions_idle_past_the_minimum_ttl() -> None:
    cache = ReplyCache(max_sessions=2, session_ttl=300.0, min_session_ttl=30.0)
    cache.begin((ADDR, 1), 1, 0, now=0.0)
    cache.complete((ADDR, 1), 1, b"r")
    cache.begin((ADDR, 2), 1, 0, now=0.0)  # still running: never dropped
    assert cache.begin((ADDR, 3), 1, 0, now=20.0)[0] is Admission.BUSY  # nobody idle enough
    assert cache.begin((ADDR, 3), 1, 0, now=31.0)[0] is Admission.NEW
    stats = cache.statistics()
    assert (stats.sessions, stats.evictions) == (2, 1)
    assert cache.begin((ADDR, 2), 1, 0, now=31.0)[0] is Admission.RUNNING


def test_closed_session_is_dropped_at_once_when_nothing_runs() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.complete(KEY, 1, b"reply")
    cache.close_session(KEY)
    stats = cache.statistics()
    assert (stats.sessions, stats.entries, stats.bytes, stats.closed_sessions) == (0, 0, 0, 1)


def test_closed_session_with_a_running_call_goes_when_the_call_completes() -> None:
    cache = ReplyCache()
    cache.begin(KEY, 1, 0, now=0.0)
    cache.begin(KEY, 2, 0, now=0.0)
    cache.complete(KEY, 1, b"reply")
    cache.close_session(KEY)
    assert cache.statistics().entries == 1  # the finished call went; the running one stays
    assert cache.begin(KEY, 3, 0, now=0.1) == (Admission.STALE, None)  # a straggler
    cache.complete(KEY, 2, b"late reply")
    stats = cache.statistics()
    assert (stats.sessions, stats.entries, stats.running, stats.bytes) == (0, 0, 0, 0)
