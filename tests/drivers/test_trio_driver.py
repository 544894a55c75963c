"""TrioDriver mechanics over the simulated network (MockClock) and over real UDP on 127.0.0.1."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest
import trio
import trio.testing

from drivers.fake_endpoint import FakeEndpoint, FakeEvent
from rpc.drivers._io import BURST_PROBE_INTERVAL, RECEIVE_BATCH
from rpc.drivers._trio import TrioDriver, TrioUdpSocket, open_udp_socket
from rpc.errors import ClientClosed
from rpc.testing import SimNetwork, SimSocket


class Seen(list[FakeEvent]):
    """The events a driver delivered, with a way to wait for more (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self._more = trio.Event()

    def __call__(self, event: FakeEvent) -> None:
        self.append(event)
        self._more.set()
        self._more = trio.Event()

    async def until(self, count: int) -> None:
        while len(self) < count:
            await self._more.wait()


Pair = tuple[TrioDriver[FakeEvent], TrioDriver[FakeEvent], Seen, Seen]


def make_pair(sock_a: SimSocket | TrioUdpSocket, sock_b: SimSocket | TrioUdpSocket) -> Pair:
    seen_a, seen_b = Seen(), Seen()
    a = TrioDriver(FakeEndpoint(), sock_a, seen_a)
    b = TrioDriver(FakeEndpoint(), sock_b, seen_b)
    return a, b, seen_a, seen_b


async def test_messages_and_replies_flow_through_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    a, b, seen_a, seen_b = make_pair(net.socket(), net.socket())
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        ids = [a.send_message(b.address, f"m{i}".encode()) for i in range(200)]
        await trio.sleep(1)
        await a.aclose()
        await b.aclose()
    assert [e.data for e in seen_b] == [f"m{i}".encode() for i in range(200)]
    assert [e.message_id for e in seen_a if e.kind == "acked"] == ids
    assert a.statistics().datagrams_sent == 200 == b.statistics().datagrams_received
    assert b.statistics().datagrams_sent == 200 == a.statistics().datagrams_received
    assert a.statistics().timer_fires == b.statistics().timer_fires == 0  # no wake-up per datagram


async def test_timer_fires_at_its_deadline_and_moves_earlier(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    endpoint = FakeEndpoint(timer_after_send=0.25)
    endpoint.timers.append(100.0)
    seen: list[FakeEvent] = []
    driver = TrioDriver(endpoint, net.socket(), seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await trio.sleep(1.0)
        driver.send_message(("10.9.9.9", 1), b"x")  # timer moves from 100 to 1.25
        await trio.sleep(200)
        await driver.aclose()
    assert endpoint.timer_fires == [1.25, 100.0]
    assert [e.time for e in seen if e.kind == "timer"] == [1.25, 100.0]
    assert driver.statistics().timer_fires == 2


async def test_a_timer_moved_later_costs_one_early_wakeup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    endpoint = FakeEndpoint()
    endpoint.timers.append(5.0)
    seen: list[FakeEvent] = []
    driver = TrioDriver(endpoint, net.socket(), seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await trio.sleep(1.0)
        endpoint.timers = [10.0]
        driver.flush()
        await trio.sleep(20)
        await driver.aclose()
    assert endpoint.timer_fires == [5.0, 10.0]
    assert [e.time for e in seen if e.kind == "timer"] == [10.0]


async def test_open_udp_socket_resolves_names() -> None:
    sock = await open_udp_socket("localhost", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


async def test_a_timer_left_in_the_past_does_not_spin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    endpoint = FakeEndpoint(stuck_timer=True)
    endpoint.timers.append(0.5)
    driver = TrioDriver(endpoint, net.socket(), lambda event: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await trio.sleep(0.5 + 0.0105)
        await driver.aclose()
    fires = endpoint.timer_fires
    assert 10 <= len(fires) <= 12
    assert all(later - earlier >= 0.001 - 1e-12 for earlier, later in itertools.pairwise(fires))


class StallingSocket(SimSocket):
    """A simulated socket whose buffer is 'full' for the first few non-blocking sends."""

    refusals = 3

    def try_sendto(self, data: bytes, addr: tuple[str, int]) -> bool:
        if self.refusals > 0:
            self.refusals -= 1
            return False
        return super().try_sendto(data, addr)

    async def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        await trio.sleep(0.01)  # waits for room, as a full kernel buffer would
        super().try_sendto(data, addr)


async def test_full_socket_falls_back_to_the_writer_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    stalling = StallingSocket(net, ("10.5.5.5", 1), 100)
    net._sockets[stalling.getsockname()] = stalling
    a, b, _, seen_b = make_pair(stalling, net.socket())
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        for i in range(10):
            a.send_message(b.address, bytes([i]))
        await trio.sleep(1)
        await a.aclose()
        await b.aclose()
    assert [e.data for e in seen_b] == [bytes([i]) for i in range(10)]
    assert a.statistics().send_waits == 10  # the first was refused, so all ten queued in order


async def test_send_after_close_raises_client_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    driver = TrioDriver(FakeEndpoint(), net.socket(), lambda event: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await driver.aclose()
    with pytest.raises(ClientClosed):
        driver.send_message(("10.0.0.9", 1), b"late")


async def test_real_udp_round_trips() -> None:
    a, b, seen_a, seen_b = make_pair(await open_udp_socket(), await open_udp_socket())
    assert a.address[0] == "127.0.0.1"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            for i in range(100):
                a.send_message(b.address, i.to_bytes(2, "big"))
                await seen_a.until(i + 1)  # one at a time: each ack before the next message
            await a.aclose()
            await b.aclose()
    assert [int.from_bytes(e.data, "big") for e in seen_b] == list(range(100))
    assert all(e.kind == "acked" and e.addr == b.address for e in seen_a)


async def pile_up_then_read(payloads: list[bytes]) -> tuple[FakeEndpoint, Seen]:
    """Send ``payloads`` over real UDP before the receiver's reader runs (they pile up on its
    socket), then let it read them all; its endpoint and events."""
    a, b, seen_a, seen_b = make_pair(await open_udp_socket(), await open_udp_socket())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            for payload in payloads:
                a.send_message(b.address, payload)
            await nursery.start(b.run)
            await seen_a.until(len(payloads))
            await a.aclose()
            await b.aclose()
    endpoint = b.endpoint
    assert isinstance(endpoint, FakeEndpoint)
    return endpoint, seen_b


async def test_real_udp_burst_of_fragments_is_read_in_batches() -> None:
    endpoint, seen = await pile_up_then_read([bytes(1000)] * 50)  # fragment-sized
    assert len(seen) == 50
    assert len(set(endpoint.received_at)) < 50  # several datagrams shared one wakeup


async def test_real_udp_queue_of_small_datagrams_is_found_and_drained() -> None:
    # Many calls in flight: small datagrams queue on the socket. Each is read through its own
    # wake-up only until the periodic look (BURST_PROBE_INTERVAL) finds the queue; the rest
    # then come in batches.
    endpoint, seen = await pile_up_then_read([i.to_bytes(2, "big") for i in range(200)])
    assert [int.from_bytes(e.data, "big") for e in seen] == list(range(200))
    wakeups = len(set(endpoint.received_at))
    assert wakeups <= BURST_PROBE_INTERVAL + 200 // RECEIVE_BATCH + 1


class FlakySocket(SimSocket):
    """A simulated socket whose first receive and first send fail as an ICMP error would."""

    failed_receive = failed_send = False

    async def recvfrom(self, bufsize: int) -> tuple[bytes, tuple[str, int]]:
        if not self.failed_receive:
            self.failed_receive = True
            await trio.lowlevel.checkpoint()
            raise ConnectionRefusedError("port unreachable")
        return await super().recvfrom(bufsize)

    def try_sendto(self, data: bytes, addr: tuple[str, int]) -> bool:
        if not self.failed_send:
            self.failed_send = True
            raise OSError(101, "network is unreachable")
        return super().try_sendto(data, addr)


async def test_socket_errors_are_counted_and_survived(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=1)
    flaky = FlakySocket(net, ("10.6.6.6", 1), 100)
    net._sockets[flaky.getsockname()] = flaky
    a, b, _, seen_b = make_pair(flaky, net.socket())
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        a.send_message(b.address, b"lost")
        a.send_message(b.address, b"sent")
        await trio.sleep(1)
        await a.aclose()
        await b.aclose()
    assert [e.data for e in seen_b] == [b"sent"]
    stats = a.statistics()
    assert (stats.send_errors, stats.receive_errors, stats.datagrams_sent) == (1, 1, 1)
    assert stats.datagrams_received == 1  # the ack of "sent" still arrived after the error


async def test_a_caller_leads_once_the_reader_woke_the_last_follower() -> None:
    a, b, seen_a, _ = make_pair(await open_udp_socket(), await open_udp_socket())
    readers: list[trio.lowlevel.Task] = []

    def on_event(event: FakeEvent) -> None:  # the client's part: wake the follower
        readers.append(trio.lowlevel.current_task())
        if a.followers:
            a.followers -= 1
        seen_a(event)
        a.interrupt_leader()

    a._on_event = on_event
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            assert not a.can_lead()  # the reader task is on the socket
            a.followers = 1
            a.send_message(b.address, b"first")
            await seen_a.until(1)
            assert a.can_lead()  # it woke the last follower, so it stepped aside
            a.send_message(b.address, b"second")
            assert await a.lead(lambda: len(seen_a) == 2)
            await a.aclose()
            await b.aclose()
    me = trio.lowlevel.current_task()
    assert readers[0] is not me
    assert readers[1] is me  # the leader read its own ack: no hop


async def test_timers_fire_while_a_caller_leads() -> None:
    sock = await open_udp_socket()
    endpoint = FakeEndpoint()
    seen = Seen()
    driver = TrioDriver(endpoint, sock, seen)

    def on_event(event: FakeEvent) -> None:
        seen(event)
        driver.interrupt_leader()

    driver._on_event = on_event
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            driver._aside = True  # as after the reader woke the last follower
            await nursery.start(driver.run)
            assert driver.can_lead()
            endpoint.timers.append(trio.current_time() + 0.05)
            driver.flush()
            assert await driver.lead(lambda: len(seen) == 1)
            await driver.aclose()
    assert seen[0].kind == "timer"
    assert driver.statistics().timer_fires == 1


async def test_closing_the_driver_ends_a_leaders_wait() -> None:
    driver = TrioDriver(FakeEndpoint(), await open_udp_socket(), lambda event: None)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            driver._aside = True
            await nursery.start(driver.run)
            nursery.start_soon(driver.aclose)
            assert not await driver.lead(lambda: False)


async def test_simulated_sockets_never_lead() -> None:
    driver = TrioDriver(FakeEndpoint(), SimNetwork(seed=1).socket(), lambda event: None)
    assert not driver.can_lead()


class MovingTimerEndpoint(FakeEndpoint):
    """A fake endpoint whose one timer the test moves (as acks push a retransmission timer)."""

    timer: float | None = None

    def get_timer(self) -> float | None:
        return self.timer

    def handle_timer(self, *, now: float) -> None:
        super().handle_timer(now=now)
        if self.timer is not None and self.timer <= now:
            self.timer = None


async def test_a_timer_that_keeps_moving_later_does_not_wake_the_reader_while_callers_lead(
    mock_clock: trio.testing.MockClock,
) -> None:
    # Real datagrams on 127.0.0.1, but trio time stands still unless the test moves it (a
    # MockClock at rate 0): how fast this machine schedules cannot make a timer fire, so the
    # count below is exact. Each call takes 0.2 ms of simulated time, as on a quiet machine.
    endpoint = MovingTimerEndpoint()
    a = TrioDriver(endpoint, await open_udp_socket(), lambda event: None)
    b = TrioDriver(FakeEndpoint(), await open_udp_socket(), lambda event: None)
    acked: list[int] = []
    calls = 500  # 100 ms of simulated time: some 25 periods of the 4 ms timer

    def on_event(event: FakeEvent) -> None:
        acked.append(event.message_id)
        a.interrupt_leader()

    def acked_last(message_id: int) -> Callable[[], bool]:
        return lambda: acked[-1:] == [message_id]

    a._on_event = on_event
    async with trio.open_nursery() as nursery:
        # Simulated time cannot bound a wait for a real datagram: a thread sleeping in real
        # time can (loopback does not lose them, so it never fires in practice).
        nursery.start_soon(_cancel_after_real_seconds, 10.0, nursery.cancel_scope)
        a._aside = True  # as after the reader woke the last follower
        await nursery.start(a.run)
        await nursery.start(b.run)
        for _ in range(calls):
            endpoint.timer = trio.current_time() + 0.004  # later with every message
            message_id = a.send_message(b.address, b"x")
            assert a.can_lead()
            assert await a.lead(acked_last(message_id))
            mock_clock.jump(0.0002)
        await a.aclose()
        await b.aclose()
        nursery.cancel_scope.cancel()
    # Each leader leaving moved the reader's wake-up along with the timer, so the reader never
    # woke early for it (it did some 25 times before).
    assert endpoint.timer_fires == []
    assert len(acked) == calls


async def _cancel_after_real_seconds(seconds: float, scope: trio.CancelScope) -> None:
    await trio.to_thread.run_sync(time.sleep, seconds, abandon_on_cancel=True)
    scope.cancel()
    raise AssertionError(f"the test did not finish within {seconds} s of real time")


@pytest.mark.parametrize(("moved_at", "fires"), [(0.5, [1.0, 2.0]), (0.9995, [2.0])])
async def test_a_reader_about_to_wake_follows_a_timer_that_moved_later(
    autojump_clock: trio.testing.MockClock, moved_at: float, fires: list[float]
) -> None:
    endpoint = MovingTimerEndpoint()
    endpoint.timer = 1.0
    driver = TrioDriver(endpoint, SimNetwork(seed=1).socket(), lambda event: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await trio.sleep(moved_at)
        endpoint.timer = 2.0
        driver.flush()  # as after input: long before the wake-up it stays, just before it moves
        await trio.sleep(5)
        await driver.aclose()
    assert endpoint.timer_fires == fires
