"""Scenario 12: hostile input. Random bytes, truncated and oversized datagrams, valid-looking
headers with absurd lengths and fragment counts, a flood of first fragments that never complete,
floods of tiny fragments, replayed datagrams, and another session's datagrams from a different
address. The server stays up, legitimate calls keep working (at most once), every hostile
datagram is accounted for in the server's statistics, and memory stays under the stated bound.
(Calls replayed from a different address are dropped: a session lives at one address; see
docs/testing.md.)

Stated bound: while it is attacked, the memory the process holds grows by at most
``MEMORY_FACTOR`` times the server's total reassembly budget (``reassembly_bytes_total``):
fragments are held only within reserved budgets, and each held fragment carries at least a
minimum payload, so its bookkeeping cannot dwarf the bytes it reserves.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterable

import pytest
import trio

import rpc
from rpc.testing import LinkFaults, SimNetwork, simulated_service
from rpc.transport import wire
from rpc.transport.config import TransportConfig
from tests.acceptance.helpers import (
    REALNET_BOUND,
    Address,
    Ledger,
    TapSocket,
    apply_checked,
    eventually,
    proxied_service,
)
from tests.acceptance.service import Chaos

KiB = 1024
CLEAN = LinkFaults()
CONFIG = TransportConfig(
    max_peers=64,
    reassembly_bytes_per_peer=256 * KiB,
    reassembly_bytes_total=512 * KiB,
    reassembly_messages_per_peer=16,
    reassembly_timeout=5.0,
)
MEMORY_FACTOR = 8
MEMORY_BOUND = MEMORY_FACTOR * CONFIG.reassembly_bytes_total
ATTACKERS = 4
BOUND = 600.0  # virtual seconds
HOSTILE_EPOCH = 0x5EED_0BAD


def packet(flags: int, pn: int, *, ack: bytes = b"", data_head: bytes = b"",
           fragment: bytes = b"", sender: int = HOSTILE_EPOCH) -> bytes:
    """A well-formed datagram (valid CRC) with whatever header values the attacker likes."""
    return wire.encode_datagram(wire.TYPE_PACKET, flags, sender, 0, pn, ack, data_head, fragment)


def data(pn: int, message_id: int, total: int, offset: int, fragment: bytes, sender: int) -> bytes:
    """A DATA datagram carrying one fragment."""
    head = wire.DATA_HEAD.pack(message_id, 0, total, offset)
    return packet(wire.FLAG_DATA, pn, data_head=head, fragment=fragment, sender=sender)


def absurd_headers(count: int, spread: int = ATTACKERS) -> list[bytes]:
    """Valid CRCs around nonsense: 4 GiB messages, fragments far past their message's end,
    acknowledgements of packet numbers nobody ever sent."""
    out: list[bytes] = []

    def sender() -> int:
        return per_socket(0, len(out), spread)

    for k in range(count):
        out.append(data(k, k + 1, 2**32 - 1, 0, b"x" * 100, sender()))
        head = wire.DATA_HEAD.pack(k + 1, 0, 2**31, 2**31 - 1)
        out.append(packet(wire.FLAG_DATA, 1000 + k, data_head=head, fragment=b"xy"))
        ack = wire.ACK_HEAD.pack(2**64 - 1, 2**32 - 1, 1, 2**32 - 1)
        out.append(packet(wire.FLAG_ACK, 2000 + k, ack=ack, sender=sender()))
    return out


def first_fragments(count: int, total: int, spread: int = ATTACKERS) -> list[bytes]:
    """First fragments of ``count`` messages that never complete."""
    return [
        data(k, 100 + k, total, 0, b"f" * 1000, per_socket(0x100, k, spread)) for k in range(count)
    ]


def tiny_fragments(count: int, total: int, spread: int = ATTACKERS) -> list[bytes]:
    """One-byte fragments of one message at distinct offsets: as many fragments as bytes."""
    return [data(k, 7, total, 2 * k, b"t", per_socket(0x200, k, spread)) for k in range(count)]


def per_socket(base: int, index: int, spread: int) -> int:
    """The sender epoch of the ``index``-th datagram of a batch dealt round-robin over
    ``spread`` sockets (as Attack.send does): an epoch seen at two addresses is dropped at the
    second, so each socket speaks with its own."""
    return HOSTILE_EPOCH + base + index % spread


class Attack:
    """Sends datagrams from attacker sockets and measures what the server counted."""

    def __init__(self, net: SimNetwork, server: rpc.Server, target: Address) -> None:
        self.net = net
        self.server = server
        self.target = target
        self.sockets = [net.socket() for _ in range(ATTACKERS)]

    def counters(self) -> dict[str, int]:
        t = self.server.statistics().transport
        return {name: getattr(t, name) for name in t.__dataclass_fields__}

    async def send(self, datagrams: Iterable[bytes], *, fresh: bool = False) -> dict[str, int]:
        """Send (from ``fresh`` addresses if asked), let the server process everything, and
        return the counters that changed."""
        await trio.sleep(0.5)  # legitimate traffic settles first: the deltas are the attack's
        before = self.counters()
        sockets = [self.net.socket() for _ in range(ATTACKERS)] if fresh else self.sockets
        for k, datagram in enumerate(datagrams):
            sockets[k % ATTACKERS].try_sendto(datagram, self.target)
            if k % 64 == 63:
                await trio.sleep(0.001)  # let the server drain its bounded receive queue
        await trio.sleep(0.5)
        after = self.counters()
        return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def held(change: dict[str, int], *names: str) -> int:
    return sum(change.get(name, 0) for name in names)


async def test_s12_hostile_input_is_dropped_counted_and_bounded(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    rng = random.Random(12)
    net = SimNetwork(12, trace_limit=0, queue_limit=1024)
    with trio.fail_after(BOUND):
        async with simulated_service([impl], network=net, config=CONFIG) as sim:
            tap = TapSocket(net.socket())
            client_address = tap.getsockname()
            async with rpc.connect(*sim.address, socket=tap) as conn:
                client = chaos.client(conn)
                next_id = iter(range(1_000_000))

                async def legitimate_calls(n: int = 10) -> None:
                    for _ in range(n):
                        await apply_checked(client, ledger, next(next_id), size=3_000)

                await legitimate_calls()
                sent = list(tap.sent)
                captured = [d for d, _ in sent]
                attack = Attack(net, sim.server, sim.address)

                noise = [rng.randbytes(rng.randrange(0, 1500)) for _ in range(500)]
                change = await attack.send(noise)
                assert held(change, "crc_failures", "malformed_dropped") == len(noise)
                await legitimate_calls()

                cut = [d[: rng.randrange(len(d))] for d in captured for _ in range(3)]
                change = await attack.send(cut)
                assert held(change, "crc_failures", "malformed_dropped") == len(cut)

                oversized = [rng.randbytes(wire_max) for wire_max in [65_507] * 50]
                change = await attack.send(oversized)
                assert change["crc_failures"] == len(oversized)
                await legitimate_calls()

                absurd = absurd_headers(100)
                change = await attack.send(absurd)
                # Fragments past their message's end fail to decode; the rest are decoded, and the
                # 4 GiB messages refused by reassembly; the acks of nothing change nothing.
                assert change["malformed_dropped"] == 200
                assert change["datagrams_received"] == 200
                assert sim.server.statistics().transport.peers <= CONFIG.max_peers
                await legitimate_calls()

                tracemalloc.start()
                try:
                    baseline = tracemalloc.get_traced_memory()[0]
                    flood = first_fragments(400, 128 * KiB)
                    change = await attack.send(flood, fresh=True)  # left alone to expire
                    admitted = len(flood) - change["reassembly_dropped"]
                    assert admitted * 128 * KiB <= CONFIG.reassembly_bytes_total
                    tiny = tiny_fragments(10_000, 256 * KiB)
                    change = await attack.send(tiny)
                    assert change["datagrams_received"] == len(tiny)
                    peak = tracemalloc.get_traced_memory()[1] - baseline
                finally:
                    tracemalloc.stop()
                print(f"peak memory growth under attack: {peak} bytes (bound {MEMORY_BOUND})")
                assert peak <= MEMORY_BOUND
                await legitimate_calls()

                # Replays from the client's own address: old packet numbers, old messages.
                before = attack.counters()
                for datagram, target in sent:
                    tap.inject(datagram, target)
                await trio.sleep(0.5)
                after = attack.counters()
                assert after["duplicate_datagrams"] - before["duplicate_datagrams"] == len(
                    captured
                )
                # The client's datagrams again, from another address (another session's
                # identity): the session lives at the client's address, so every copy is
                # dropped before it touches any state and runs nothing again.
                impostor = attack.sockets[0]
                before = attack.counters()
                for datagram in captured:
                    impostor.try_sendto(datagram, sim.address)
                await trio.sleep(0.5)
                after = attack.counters()
                assert after["datagrams_received"] == before["datagrams_received"]
                mismatched = after["address_mismatch_drops"] - before["address_mismatch_drops"]
                assert mismatched == len(captured)
                await trio.sleep(CONFIG.reassembly_timeout * 2)  # abandoned partials expire
                await legitimate_calls()
                expired = sim.server.statistics().transport.reassembly_timeouts
    assert expired > 0
    assert len(ledger.returned) == 60
    assert not ledger.failed
    legitimate = {i: n for (addr, i), n in impl.by_caller.items() if addr == client_address}
    ledger.check_at_most_once(legitimate)  # replays ran nothing twice for the real client


@pytest.mark.realnet
async def test_s12_realnet_hostile_datagrams_beside_legitimate_calls(chaos: Chaos) -> None:
    impl = chaos.impl()
    ledger = Ledger()
    rng = random.Random(120)
    with trio.fail_after(REALNET_BOUND):
        async with proxied_service(
            [impl], to_server=CLEAN, to_client=CLEAN, seed=12,
            config=CONFIG,
        ) as (server, _, conn):
            client = chaos.client(conn)
            attacker = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await attacker.bind(("127.0.0.1", 0))
            with attacker:
                hostile = (
                    [rng.randbytes(rng.randrange(0, 1500)) for _ in range(300)]
                    + [rng.randbytes(60_000) for _ in range(20)]
                    + absurd_headers(20, spread=1)
                    + first_fragments(100, 128 * KiB, spread=1)
                )
                for k, datagram in enumerate(hostile):
                    await attacker.sendto(datagram, server.address)
                    if k % 20 == 0:
                        await apply_checked(client, ledger, k)

                def accounted() -> bool:
                    # 320 fail their CRC (or are too short), 40 absurd DATA are malformed; of the
                    # 100 first fragments one peer's budget admits 2 (real sockets: counted a
                    # moment after they arrive, hence the bounded wait).
                    t = server.statistics().transport
                    return (
                        t.crc_failures + t.malformed_dropped == 320 + 40
                        and t.reassembly_dropped == 100 - 2
                    )

                await eventually(accounted)
                for k in range(1000, 1020):
                    await apply_checked(client, ledger, k)
                stats = server.statistics().transport
                reassembly = server._endpoint.peer_statistics(attacker.getsockname())
    assert len(ledger.returned) == len(range(0, len(hostile), 20)) + 20
    ledger.check_at_most_once(impl.executions)
    assert stats.peers <= CONFIG.max_peers
    assert reassembly is not None
    assert reassembly.reassembly_bytes <= CONFIG.reassembly_bytes_per_peer
    assert stats.reassembly_dropped == 100 - 2
