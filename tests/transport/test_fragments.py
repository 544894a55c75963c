"""Fragmentation and bounded reassembly, including hostile floods."""

from __future__ import annotations

import random

from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import MessageReceived
from rpc.transport.fragments import (
    DUPLICATE,
    INCOMPLETE,
    MALFORMED,
    REFUSED,
    Reassembler,
    ReassemblyBudget,
)

KiB = 1024


def reassembler(budget: int = 10 * KiB, per_peer: int = 8 * KiB, messages: int = 4) -> Reassembler:
    return Reassembler(
        ReassemblyBudget(budget),
        byte_limit=per_peer,
        max_messages=messages,
        max_message_size=64 * KiB,
        max_completed=100,
        timeout=30.0,
    )


def test_fragments_in_any_order_with_duplicates_make_one_message() -> None:
    r = reassembler()
    payload = random.Random(1).randbytes(1000)
    pieces = [(offset, payload[offset : offset + 300]) for offset in range(0, 1000, 300)]
    order = [pieces[2], pieces[0], pieces[2], pieces[3], pieces[0]]
    results = [r.add(5, 1000, off, memoryview(piece), False, 0.0) for off, piece in order]
    assert results == [INCOMPLETE, INCOMPLETE, DUPLICATE, INCOMPLETE, DUPLICATE]
    assert r.reserved == 1000
    assert r.add(5, 1000, 300, pieces[1][1], False, 0.0) == payload
    assert r.reserved == 0
    assert r.budget.used == 0
    assert r.add(5, 1000, 0, pieces[0][1], False, 0.0) == DUPLICATE  # delivered: never again


def test_inconsistent_and_overlapping_fragments_are_malformed() -> None:
    r = reassembler()
    assert r.add(1, 1000, 0, b"a" * 500, False, 0.0) == INCOMPLETE
    assert r.add(1, 999, 500, b"b" * 499, False, 0.0) == MALFORMED  # total changed
    assert r.add(1, 1000, 500, b"b" * 500, True, 0.0) == MALFORMED  # compression changed
    assert r.add(2, 1000, 0, b"a" * 600, False, 0.0) == INCOMPLETE
    assert r.add(2, 1000, 500, b"b" * 500, False, 0.0) == MALFORMED  # overlaps the first
    assert 2 not in r.partials
    assert r.add(3, 1000, 0, b"a" * 10, False, 0.0) == MALFORMED  # short, not the last
    assert r.add(4, 70 * KiB, 0, b"a" * 300, False, 0.0) == MALFORMED  # above the maximum


def test_budgets_are_reserved_from_declared_sizes_and_released() -> None:
    r = reassembler(budget=10 * KiB, per_peer=8 * KiB, messages=4)
    assert r.add(1, 6 * KiB, 0, b"x" * 300, False, 0.0) == INCOMPLETE
    assert r.add(2, 3 * KiB, 0, b"x" * 300, False, 0.0) == REFUSED  # 9 KiB > 8 KiB per peer
    other = Reassembler(r.budget, 8 * KiB, 4, 64 * KiB, 100, 30.0)
    assert other.add(1, 4 * KiB + 1, 0, b"x" * 300, False, 0.0) == REFUSED  # > 10 KiB total
    assert other.add(1, 4 * KiB, 0, b"x" * 300, False, 0.0) == INCOMPLETE
    assert r.expire(now=29.0) == 0
    assert r.expire(now=30.0) == 1
    assert r.budget.used == 4 * KiB
    assert r.add(2, 3 * KiB, 0, b"x" * 300, False, 31.0) == INCOMPLETE


def test_the_sender_floor_forgets_old_messages() -> None:
    r = reassembler()
    assert r.add(3, 1000, 0, b"x" * 500, False, 0.0) == INCOMPLETE
    assert r.add(4, 10, 0, b"y" * 10, False, 0.0) == b"y" * 10
    r.advance_floor(4)  # message 3 was abandoned by its sender
    assert r.partials == {}
    assert r.reserved == 0
    assert r.add(3, 1000, 500, b"x" * 500, False, 0.0) == DUPLICATE
    assert r.add(4, 10, 0, b"y" * 10, False, 0.0) == DUPLICATE


def test_large_message_fragments_arriving_in_reverse_order() -> None:
    client = Endpoint(accept_new_peers=False, epoch=1)
    server = Endpoint(accept_new_peers=True, epoch=2)
    payload = random.Random(2).randbytes(9000)
    client.send_message(SERVER, payload, now=0.0)
    datagrams = [data for data, _ in client.datagrams_to_send(now=0.0)]
    assert len(datagrams) == 9  # 1102 bytes of payload per 1200-byte datagram
    assert all(len(data) <= 1200 for data in datagrams)
    for data in reversed(datagrams):
        server.receive_datagram(data, CLIENT, now=0.01)
    server.receive_datagram(datagrams[3], CLIENT, now=0.01)  # and a duplicate
    assert drain(server) == [MessageReceived(CLIENT, payload, 1)]
    assert server.statistics().duplicate_datagrams == 1


def test_a_flood_of_first_fragments_is_bounded_and_not_acknowledged() -> None:
    config = TransportConfig(
        reassembly_bytes_per_peer=64 * KiB,
        reassembly_bytes_total=128 * KiB,
        reassembly_messages_per_peer=1000,
    )
    server = Endpoint(config, accept_new_peers=True, epoch=2)
    attacker = ("10.6.6.6", 666)
    for k in range(500):
        head = wire.encode_data_head(k + 1, 0, 16 * 1024 * 1024 - 1, 0)  # "16 MiB coming"
        flood = wire.encode_datagram(
            wire.TYPE_PACKET, wire.FLAG_DATA, 0xBAD, 0, k, b"", head, b"f" * 1000
        )
        server.receive_datagram(flood, attacker, now=0.0)
    stats = server.peer_statistics(attacker)
    assert stats is not None
    assert stats.datagrams_received == 500
    assert stats.reassembly_dropped == 500  # a 16 MiB reservation never fits 64 KiB
    assert stats.reassembly_bytes == 0
    # Refused fragments are not acknowledged: nothing is owed, nothing sent.
    assert server.datagrams_to_send(now=1.0) == []
    # Smaller declared sizes are admitted up to the per-peer reservation, then refused.
    for k in range(100):
        head = wire.encode_data_head(1000 + k, 0, 8 * KiB, 0)
        flood = wire.encode_datagram(
            wire.TYPE_PACKET, wire.FLAG_DATA, 0xBAD, 0, 500 + k, b"", head, b"f" * 1000
        )
        server.receive_datagram(flood, attacker, now=0.0)
    stats = server.peer_statistics(attacker)
    assert stats is not None
    assert stats.reassembly_bytes == 64 * KiB  # 8 messages of 8 KiB reserved
    assert stats.reassembly_dropped == 500 + 92
    # A legitimate client is still served.
    client = Endpoint(config, accept_new_peers=False, epoch=1)
    client.send_message(SERVER, b"still here", now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    assert drain(server) == [MessageReceived(CLIENT, b"still here", 1)]


def test_completed_ids_stay_bounded_as_the_floor_advances() -> None:
    r = Reassembler(ReassemblyBudget(KiB), KiB, 4, KiB, max_completed=4, timeout=30.0)
    for message_id in range(1, 50):
        r.advance_floor(message_id)  # the sender's floor: everything below is finished
        assert r.add(message_id, 1, 0, b"m", False, 0.0) == b"m"
        assert len(r.completed) <= 4
    # Without floor progress the table fills, and only the oldest outstanding id gets in.
    stuck = Reassembler(ReassemblyBudget(KiB), KiB, 4, KiB, max_completed=4, timeout=30.0)
    for message_id in (10, 11, 12, 13):
        assert stuck.add(message_id, 1, 0, b"m", False, 0.0) == b"m"
    assert stuck.add(14, 1, 0, b"m", False, 0.0) == REFUSED
    assert stuck.add(9, 1, 0, b"m", False, 0.0) == b"m"  # below every remembered id


def test_completed_ids_are_pruned_in_amortised_constant_time_with_many_in_flight() -> None:
    # 40 messages in flight: the floor trails the newest id by 40 and advances on every one.
    r = reassembler()
    in_flight, rebuilds, largest = 40, 0, 0
    for message_id in range(1, 2001):
        before = r.completed
        r.advance_floor(max(0, message_id - in_flight))
        rebuilds += r.completed is not before
        assert r.add(message_id, 1, 0, b"m", False, 0.0) == b"m"
        largest = max(largest, len(r.completed))
        # Ids below the floor may linger until the next prune, but are never delivered again.
        assert r.add(message_id - in_flight - 1, 1, 0, b"m", False, 0.0) == DUPLICATE
    assert rebuilds <= 2000 // in_flight  # about one per in_flight advances, not one each
    assert largest <= 2 * in_flight + 2


def test_a_full_completed_table_prunes_ids_below_the_floor_before_refusing() -> None:
    r = Reassembler(ReassemblyBudget(KiB), KiB, 4, KiB, max_completed=8, timeout=30.0)
    for message_id in range(1, 8):
        assert r.add(message_id, 1, 0, b"m", False, 0.0) == b"m"
    r.advance_floor(7)  # six ids now below the floor, not yet pruned (7 < 8)
    assert len(r.completed) == 7
    for message_id in range(8, 15):  # the table holds only id 7 and these: room for all
        assert r.add(message_id, 1, 0, b"m", False, 0.0) == b"m"
