"""BlockingDriver over real UDP on 127.0.0.1, and its timer handling on an injected clock."""

from __future__ import annotations

import math
import time

import pytest

from drivers.fake_endpoint import FakeEndpoint, FakeEvent
from rpc.drivers import _heap
from rpc.drivers._blocking import MAX_WAIT, BlockingDriver, _milliseconds, bind_udp_socket
from rpc.drivers._io import local_address
from rpc.errors import ClientClosed
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import PeerUnreachable


def make_driver(endpoint: FakeEndpoint | None = None) -> BlockingDriver[FakeEvent]:
    return BlockingDriver(endpoint or FakeEndpoint(), bind_udp_socket(("127.0.0.1", 0)))


def test_ping_pong_over_real_udp() -> None:
    client, server = make_driver(), make_driver()
    try:
        for i in range(100):
            sent_id = client.send_message(server.address, i.to_bytes(2, "big"))
            give_up = time.monotonic() + 5
            got: list[FakeEvent] = []
            while not got and time.monotonic() < give_up:  # the server answers with an ack
                server.poll(time.monotonic() + 0.5)
                client.poll(time.monotonic() + 0.001)
                got = client.events()
            assert [(e.kind, e.message_id) for e in got] == [("acked", sent_id)]
            (message,) = server.events()
            assert message.data == i.to_bytes(2, "big")
        assert client.statistics().datagrams_sent == 100 == server.statistics().datagrams_received
    finally:
        client.close()
        server.close()


def test_a_burst_of_fragments_is_read_in_one_poll() -> None:
    client, server = make_driver(), make_driver()
    try:
        for _ in range(30):  # fragment-sized datagrams, all queued before the server looks
            client.send_message(server.address, bytes(1000))
        server.poll(time.monotonic() + 5)
        assert len(server.events()) == 30
        assert server.statistics().datagrams_received == 30
    finally:
        client.close()
        server.close()


class StepClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_poll_fires_a_due_timer_without_waiting() -> None:
    clock = StepClock()
    endpoint = FakeEndpoint()
    endpoint.timers.append(clock.now)
    driver = BlockingDriver(endpoint, bind_udp_socket(), clock=clock)
    try:
        driver.poll(clock.now + 60)
        assert endpoint.timer_fires == [1000.0]
        assert [e.kind for e in driver.events()] == ["timer"]
    finally:
        driver.close()


def test_poll_takes_the_callers_clock_reading_and_returns_its_own() -> None:
    clock = StepClock()
    endpoint = FakeEndpoint()
    endpoint.timers.append(clock.now - 1)
    driver = BlockingDriver(endpoint, bind_udp_socket(), clock=clock)
    try:
        # The caller's reading is used as given (no wait: the deadline is not after it)...
        assert driver.poll(clock.now - 2, now=clock.now - 2) == clock.now - 2
        assert endpoint.timer_fires == []  # ... so at that time the timer was not yet due
        assert driver.poll(clock.now) == clock.now
        assert endpoint.timer_fires == [clock.now]
        seen: list[str] = []
        driver.dispatch_events(lambda event: seen.append(event.kind))
        assert seen == ["timer"]
        assert driver.events() == []  # dispatched events are gone
    finally:
        driver.close()


def test_a_timer_left_in_the_past_is_rearmed_one_granularity_later() -> None:
    clock = StepClock()
    endpoint = FakeEndpoint(stuck_timer=True)
    endpoint.timers.append(clock.now - 5)
    driver = BlockingDriver(endpoint, bind_udp_socket(), clock=clock)
    try:
        driver.poll(clock.now)  # fires: the timer is due
        driver.poll(clock.now)  # the deadline has passed: no wait, and no second fire yet
        clock.now += 0.001
        driver.poll(clock.now)
        assert endpoint.timer_fires == [1000.0, 1000.001]
    finally:
        driver.close()


def test_poll_returns_at_its_deadline_with_nothing_to_do() -> None:
    driver = make_driver()
    try:
        driver.poll(time.monotonic())
        assert driver.events() == []
        assert driver.statistics().datagrams_received == 0
    finally:
        driver.close()


def test_closed_driver_refuses_work() -> None:
    driver = make_driver()
    driver.close()
    with pytest.raises(ClientClosed):
        driver.send_message(("127.0.0.1", 9), b"x")
    with pytest.raises(ClientClosed):
        driver.poll(0.0)


def test_poll_timeouts_round_up_and_are_capped() -> None:
    assert _milliseconds(0.0) == 0
    assert _milliseconds(0.0001) == 1  # never wake before the timer
    assert _milliseconds(0.0021) == 3
    assert _milliseconds(math.inf) == _milliseconds(10 * MAX_WAIT) == MAX_WAIT * 1000


def test_timers_drive_retransmission_until_the_peer_is_declared_unreachable() -> None:
    clock = StepClock()
    start = clock.now
    endpoint = Endpoint(TransportConfig(peer_timeout=2.0), accept_new_peers=False)
    driver = BlockingDriver(endpoint, bind_udp_socket(), clock=clock)
    silent = bind_udp_socket()  # bound, never answers: what a hung server looks like
    try:
        message_id = driver.send_message(local_address(silent), b"hello?")
        unreachable: list[PeerUnreachable] = []
        for _ in range(1000):  # time is moved by hand to each timer: no real waiting
            timer = endpoint.get_timer()
            assert timer is not None
            clock.now = max(clock.now, timer)
            driver.poll(clock.now)
            unreachable += [e for e in driver.events() if isinstance(e, PeerUnreachable)]
            if unreachable:
                break
        assert [e.pending_message_ids for e in unreachable] == [(message_id,)]
        assert 2.0 <= clock.now - start <= 3.0
        sent = driver.statistics().datagrams_sent
        assert sent >= 2  # the first try and at least one timer-driven retransmission
        arrived = 0
        while True:
            try:
                silent.recvfrom(65536)
            except BlockingIOError:
                break
            arrived += 1
        assert arrived == sent
    finally:
        driver.close()
        silent.close()


def test_close_ends_every_session_before_the_socket_closes() -> None:
    endpoint = FakeEndpoint()
    clock = StepClock()
    driver = BlockingDriver(endpoint, bind_udp_socket(("127.0.0.1", 0)), clock=clock)
    driver.close()
    driver.close()  # idempotent: the sessions are ended once
    assert endpoint.closed_at == [clock.now]


def test_binding_a_socket_moves_large_buffers_to_the_heap_once() -> None:
    # Every real endpoint binds through bind_udp_socket, which must have run the allocator
    # warm-up (rpc.drivers._heap); it is cached, so later sockets do not repeat it.
    bind_udp_socket(("127.0.0.1", 0)).close()
    bind_udp_socket(("127.0.0.1", 0)).close()
    info = _heap.prefer_heap_for_large_buffers.cache_info()
    assert info.currsize == 1
    assert info.hits >= 1
