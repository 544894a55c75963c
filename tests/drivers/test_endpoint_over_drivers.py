"""The real sans-I/O Endpoint under both drivers: simulated faults (MockClock) and real UDP."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
import trio
import trio.testing

from rpc.drivers._blocking import BlockingDriver, bind_udp_socket
from rpc.drivers._io import Address
from rpc.drivers._trio import DatagramSocket, TrioDriver, open_udp_socket
from rpc.testing import LinkFaults, SimNetwork
from rpc.testing.chaos_proxy import ChaosProxy
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import (
    MessageAcked,
    MessageReceived,
    PeerClosed,
    PeerUnreachable,
    TransportEvent,
)


class Echo:
    """A server that sends every message back, from inside the driver's event callback."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.driver: TrioDriver[TransportEvent] | None = None

    def on_event(self, event: TransportEvent) -> None:
        if isinstance(event, MessageReceived):
            self.received.append(event.payload)
            assert self.driver is not None
            self.driver.send_message(event.addr, event.payload)


class Collector:
    """A client that records replies and acks."""

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.acked: set[int] = set()
        self.changed = trio.Event()

    def on_event(self, event: TransportEvent) -> None:
        if isinstance(event, MessageReceived):
            self.replies.append(event.payload)
        elif isinstance(event, MessageAcked):
            self.acked.add(event.message_id)
        self.changed.set()
        self.changed = trio.Event()


async def echo_many(
    client_sock: DatagramSocket,
    server_sock: DatagramSocket,
    payloads: list[bytes],
    via: Callable[[], Address] | None = None,
) -> tuple[Collector, Echo, list[int]]:
    """Send ``payloads`` one window at a time through an echo server; wait for every reply."""
    echo, collector = Echo(), Collector()
    server: TrioDriver[TransportEvent] = TrioDriver(
        Endpoint(accept_new_peers=True), server_sock, echo.on_event
    )
    echo.driver = server
    client: TrioDriver[TransportEvent] = TrioDriver(
        Endpoint(accept_new_peers=False), client_sock, collector.on_event
    )
    ids = []
    with trio.fail_after(600):  # virtual seconds under MockClock; a real-time bound otherwise
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            await nursery.start(client.run)
            for start in range(0, len(payloads), 20):
                for payload in payloads[start : start + 20]:
                    ids.append(client.send_message(via() if via else server.address, payload))
                while len(collector.replies) < min(start + 20, len(payloads)):
                    await collector.changed.wait()
            while len(collector.acked) < len(ids):
                await collector.changed.wait()
            await client.aclose()
            await server.aclose()
    return collector, echo, ids


async def test_exactly_once_under_loss_duplication_and_reordering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = LinkFaults(
        loss=0.2, burst_max=2, duplicate=0.1, reorder=0.1, delay=0.001, jitter=0.002
    )
    net = SimNetwork(seed=11, faults=faults)
    payloads = [f"message {i}".encode() * (1 + i % 7) for i in range(300)]
    collector, echo, ids = await echo_many(net.socket(), net.socket(), payloads)
    assert sorted(echo.received) == sorted(payloads)  # each delivered exactly once, intact
    assert sorted(collector.replies) == sorted(payloads)
    assert collector.acked == set(ids)
    stats = net.statistics()
    assert stats.dropped_loss > 100
    assert stats.duplicated > 50
    assert stats.reordered > 20


async def test_corruption_is_caught_and_large_messages_survive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=3, faults=LinkFaults(corrupt=0.1, loss=0.05), queue_limit=1024)
    payloads = [random.Random(i).randbytes(64_000) for i in range(5)]  # incompressible
    collector, echo, _ = await echo_many(net.socket(), net.socket(), payloads)
    assert sorted(echo.received) == sorted(payloads)
    assert sorted(collector.replies) == sorted(payloads)
    assert net.statistics().corrupted > 10


@pytest.mark.realnet
async def test_trio_driver_over_real_udp() -> None:
    payloads = [bytes([i % 256]) * (10 + i * 37) for i in range(200)] + [bytes(300_000)]
    client_sock, server_sock = await open_udp_socket(), await open_udp_socket()
    collector, echo, _ = await echo_many(client_sock, server_sock, payloads)
    assert sorted(echo.received) == sorted(payloads)
    assert sorted(collector.replies) == sorted(payloads)


@pytest.mark.realnet
def test_blocking_drivers_over_real_udp() -> None:
    client = BlockingDriver(Endpoint(accept_new_peers=False), bind_udp_socket())
    server = BlockingDriver(Endpoint(accept_new_peers=True), bind_udp_socket())
    payloads = [bytes([i]) * (1 + i * 100) for i in range(50)] + [bytes(200_000)]
    replies: list[bytes] = []
    received: list[bytes] = []
    give_up = time.monotonic() + 20
    try:
        for count, payload in enumerate(payloads, 1):
            client.send_message(server.address, payload)
            while len(replies) < count and time.monotonic() < give_up:
                server.poll(time.monotonic() + 0.002)
                for event in server.events():
                    if isinstance(event, MessageReceived):
                        received.append(event.payload)
                        server.send_message(event.addr, event.payload)
                client.poll(time.monotonic() + 0.002)
                replies += [e.payload for e in client.events() if isinstance(e, MessageReceived)]
    finally:
        client.close()
        server.close()
    assert received == payloads
    assert replies == payloads


@pytest.mark.realnet
async def test_trio_driver_through_the_chaos_proxy() -> None:
    faults = LinkFaults(loss=0.1, duplicate=0.05, corrupt=0.05)
    payloads = [random.Random(i).randbytes(100 + 50 * i) for i in range(100)]
    client_sock, server_sock = await open_udp_socket(), await open_udp_socket()
    async with ChaosProxy(server_sock.getsockname(), faults, faults, seed=2) as proxy:
        collector, echo, _ = await echo_many(
            client_sock, server_sock, payloads, via=lambda: proxy.address
        )
        stats = proxy.statistics()
    assert sorted(echo.received) == sorted(payloads)
    assert sorted(collector.replies) == sorted(payloads)
    for direction in (stats.to_server, stats.to_client):
        assert direction.dropped_loss > 0
        assert direction.corrupted > 0


async def test_the_driver_timer_reports_an_unreachable_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=4)
    client_sock, server_sock = net.socket(), net.socket()
    net.partition(client_sock.getsockname(), server_sock.getsockname())
    seen: list[TransportEvent] = []
    config = TransportConfig(peer_timeout=5.0)
    driver: TrioDriver[TransportEvent] = TrioDriver(
        Endpoint(config, accept_new_peers=False), client_sock, seen.append
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        start = trio.current_time()
        message_id = driver.send_message(server_sock.getsockname(), b"hello?")
        with trio.fail_after(60):
            while not any(isinstance(e, PeerUnreachable) for e in seen):
                await trio.sleep(0.5)
        waited = trio.current_time() - start
        await driver.aclose()
    (event,) = [e for e in seen if isinstance(e, PeerUnreachable)]
    assert event.pending_message_ids == (message_id,)
    assert 5.0 <= waited <= 6.0  # reported by a timer firing, about when it was due
    assert driver.statistics().timer_fires >= 3  # the retransmissions were timer-driven too
    assert net.statistics().dropped_partition == driver.statistics().datagrams_sent


async def test_closing_a_client_driver_ends_its_session_on_the_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=5)
    server_events: list[TransportEvent] = []
    server: TrioDriver[TransportEvent] = TrioDriver(
        Endpoint(accept_new_peers=True), net.socket(), server_events.append
    )
    collector = Collector()
    client: TrioDriver[TransportEvent] = TrioDriver(
        Endpoint(accept_new_peers=False), net.socket(), collector.on_event
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            await nursery.start(client.run)
            client.send_message(server.address, b"call")
            while not any(isinstance(e, MessageReceived) for e in server_events):
                await trio.sleep(0.0001)
            server.send_message(client.address, b"reply")
            while not collector.replies:
                await collector.changed.wait()
            await client.aclose()  # right after the reply: its ACK is still owed
            await trio.sleep(30)  # long past the server's peer timeout
            server_stats = server.endpoint.statistics()  # type: ignore[attr-defined]
            await server.aclose()
    closed = [e for e in server_events if isinstance(e, PeerClosed)]
    assert [e.addr for e in closed] == [client.address]
    assert not any(isinstance(e, PeerUnreachable) for e in server_events)
    assert server_stats.peers == 0
    assert server_stats.retransmissions == 0  # the reply's ACK arrived: nothing was resent
