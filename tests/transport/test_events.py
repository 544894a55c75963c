"""Transport events are values: equality, hashing, repr, class patterns, read-only fields."""

from __future__ import annotations

import pytest

from rpc import _accel
from rpc.transport.events import MessageAcked, MessageReceived, PeerClosed, PeerRestarted

ADDR = ("127.0.0.1", 4000)


def test_events_compare_and_hash_by_type_and_value() -> None:
    assert MessageAcked(ADDR, 5) == MessageAcked(ADDR, 5)
    assert hash(MessageAcked(ADDR, 5)) == hash(MessageAcked(ADDR, 5))
    assert MessageAcked(ADDR, 5) != MessageAcked(ADDR, 6)
    assert MessageAcked(ADDR, 5) != PeerClosed(ADDR, 5)  # same values, another event
    assert MessageAcked(ADDR, 5) != (ADDR, 5)
    assert len({MessageAcked(ADDR, 5), MessageAcked(ADDR, 5), PeerClosed(ADDR, 5)}) == 2


def test_repr_names_every_field_in_order() -> None:
    event = PeerRestarted(ADDR, 1, 2, (3,))
    assert repr(event) == (
        "PeerRestarted(addr=('127.0.0.1', 4000), old_epoch=1, new_epoch=2,"
        " unseen_message_ids=(3,))"
    )


def test_class_patterns_bind_fields_positionally() -> None:
    match MessageReceived(ADDR, b"hi", 7):
        case MessageReceived(addr, payload, epoch):
            assert (addr, payload, epoch) == (ADDR, b"hi", 7)
        case _:
            pytest.fail("MessageReceived did not match its own class pattern")


def test_compiled_events_are_read_only() -> None:
    event = MessageReceived(ADDR, b"hi", 7)
    if not _accel.compiled_core():
        assert event.peer_epoch == 7  # pure Python: the type checker guards the fields
        return
    with pytest.raises(AttributeError):
        event.peer_epoch = 8  # type: ignore[misc]
    assert event.peer_epoch == 7
