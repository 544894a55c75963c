"""Scenario 13: amplification. A source whose address the server has not validated (it never
echoed the server's epoch) receives at most 3x the bytes it sent, whatever it sent: a small
call with a large reply, or a stream of small ack-eliciting datagrams."""

from __future__ import annotations

import trio

import rpc
from rpc.testing import SimNetwork, simulated_service
from rpc.transport import wire
from rpc.transport.crc import crc32c
from tests.acceptance.helpers import TapSocket
from tests.acceptance.service import Chaos

FACTOR = 3  # RFC 9000 §8.1's limit, which the transport adopts
REPLY = 60_000  # bytes: a ~40-byte call asks for fifty 1200-byte datagrams
SPOOFED_CALLS = 10
PINGERS = 10
PINGS = 200
BOUND = 600.0  # virtual seconds
SETTLE = 60.0  # past the server's peer timeout: everything it would ever send has been sent


def pings(count: int, sender: int) -> list[bytes]:
    """Tiny ack-eliciting datagrams with gaps between packet numbers (so acks carry ranges)."""
    return [
        wire.encode_datagram(wire.TYPE_PACKET, wire.FLAG_PING, sender, 0, 2 * k, b"", b"", b"")
        for k in range(count)
    ]


def with_sender_epoch(datagram: bytes, epoch: int) -> bytes:
    """``datagram`` with another sender epoch (header bytes 5..12) and a fixed-up CRC."""
    body = datagram[:5] + epoch.to_bytes(8, "big") + datagram[13 : -wire.CRC_SIZE]
    return body + crc32c(body).to_bytes(wire.CRC_SIZE, "little")


async def test_s13_unvalidated_sources_get_at_most_three_times_their_bytes(
    chaos: Chaos, autojump_clock: trio.testing.MockClock
) -> None:
    impl = chaos.impl()
    net = SimNetwork(13)
    with trio.fail_after(BOUND):
        async with simulated_service([impl], network=net) as sim:
            tap = TapSocket(net.socket())
            async with rpc.connect(*sim.address, socket=tap) as conn:
                assert len(await chaos.client(conn).generate(REPLY, 1)) == REPLY
            first_call, _ = tap.sent[0]  # addressed to "epoch unknown": any server takes it
            assert wire.decode_datagram_untrusted(first_call).receiver_epoch == 0

            victims = [net.socket() for _ in range(SPOOFED_CALLS + PINGERS)]
            for n, sock in enumerate(victims[:SPOOFED_CALLS]):
                # As if spoofed with the victim's address; each copy under its own epoch, since
                # the server drops a live session's epoch arriving from another address.
                spoofed = with_sender_epoch(first_call, 0x5B00F + n)
                sock.try_sendto(spoofed, sim.address)
            for n, sock in enumerate(victims[SPOOFED_CALLS:]):
                for datagram in pings(PINGS, sender=0xA11CE + n):
                    sock.try_sendto(datagram, sim.address)
                    await trio.sleep(0.0005)
            await trio.sleep(SETTLE)
            limited = sim.server.statistics().transport.amplification_limited
    assert impl.generated == 1 + SPOOFED_CALLS  # the server did try to answer every call
    assert limited > 0  # and the limit is what held it back
    for sock in victims:
        addr = sock.getsockname()
        received = net.link_statistics(addr, sim.address).bytes_sent
        sent_back = net.link_statistics(sim.address, addr).bytes_sent
        assert received > 0
        assert sent_back <= FACTOR * received, (addr, received, sent_back)
    replied = sum(net.link_statistics(sim.address, s.getsockname()).bytes_sent for s in victims)
    assert replied > 0  # the server was not simply silent
