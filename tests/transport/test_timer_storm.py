"""No timer storms: a deadline in the past fires once, and a peer held back by the
anti-amplification limit arms no probe timer (RFC 9002 §6.2.2.1) until it sends more.

The driver loops here fire a due timer no sooner than ``TIMER_GRANULARITY`` after the previous
fire, as the real drivers do (``rpc.drivers._io.timer_deadline``): a deadline an endpoint leaves in
the past then costs one fire per millisecond, which these tests count.
"""

from __future__ import annotations

import heapq
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from transport_harness import CLIENT, SERVER, drain, transfer

from rpc.drivers._io import timer_deadline
from rpc.transport import wire
from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.events import Address, MessageReceived, PeerUnreachable

CONFIG = TransportConfig(
    initial_rtt=0.1, max_ack_delay=0.005, min_pto=0.002, max_pto=1.0, peer_timeout=10.0
)
#: Much bigger than 3x the client's one small datagram: no fragment of it fits the budget.
REPLY = random.Random(7).randbytes(5000)
#: More fires than this over a simulated run means a deadline stayed in the past.
FIRES_PER_BLOCKED_PEER = 16


def blocked_server(count: int = 1) -> tuple[Endpoint, list[Address]]:
    """A server with ``count`` unvalidated peers, each owed a reply it may not send.

    Each client sends one small call from an address that never gets (so never echoes) the
    server's epoch, as a spoofed source would; the server's big reply is held back.
    """
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    addrs: list[Address] = [(f"10.1.{i // 250}.{i % 250}", 40000) for i in range(count)]
    for index, addr in enumerate(addrs):
        client = Endpoint(CONFIG, accept_new_peers=False, epoch=100 + index)
        client.send_message(SERVER, b"?", now=0.0)
        transfer(client, addr, server, now=0.0)  # the server's answers never reach it
    assert len(drain(server)) == count
    for addr in addrs:
        server.send_message(addr, REPLY, now=0.001)
    server.datagrams_to_send(now=0.001)  # a PING each (no fragment fits)
    assert server.statistics().amplification_limited >= count
    return server, addrs


def drive_timers(endpoint: Endpoint, start: float, until: float) -> list[float]:
    """Fire ``endpoint``'s timers as a driver does until ``until``; return the fire times."""
    fires: list[float] = []
    last_fire = -math.inf
    while len(fires) < 100_000:
        deadline = timer_deadline(endpoint.get_timer(), last_fire)
        if deadline is None or deadline > until:
            break
        now = max(deadline, start)
        endpoint.handle_timer(now=now)
        endpoint.datagrams_to_send(now=now)
        fires.append(now)
        last_fire = now
    return fires


def test_an_amplification_blocked_peer_costs_a_bounded_number_of_timer_fires() -> None:
    server, (addr,) = blocked_server()
    fires = drive_timers(server, 0.001, 12.0)
    assert len(fires) <= FIRES_PER_BLOCKED_PEER
    stats = server.statistics()
    assert stats.bytes_sent <= 3 * stats.bytes_received  # the probes stayed within the budget
    assert stats.probes_sent >= 1  # it did probe while the budget allowed
    # Liveness still applies: with nothing acknowledged it is given up after peer_timeout.
    assert fires[-1] == 0.001 + CONFIG.peer_timeout
    (event,) = drain(server)
    assert isinstance(event, PeerUnreachable)
    assert event.addr == addr
    assert server.get_timer() is None


def test_many_blocked_peers_stay_quiet() -> None:
    server, addrs = blocked_server(100)
    fires = drive_timers(server, 0.001, 12.0)
    assert len(fires) <= FIRES_PER_BLOCKED_PEER  # each round serves every peer due
    unreachable = [e for e in drain(server) if isinstance(e, PeerUnreachable)]
    assert sorted(e.addr for e in unreachable) == sorted(addrs)


def test_while_blocked_only_liveness_is_armed_and_more_bytes_rearm_the_probe() -> None:
    server, (addr,) = blocked_server()
    drive_timers(server, 0.001, 5.0)
    probes = server.statistics().probes_sent
    assert server.get_timer() == 0.001 + CONFIG.peer_timeout  # no probe timer
    # The client sends again (it still has not heard from the server): more budget.
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=100)
    client.send_message(SERVER, b"again", now=5.0)
    transfer(client, addr, server, now=5.0)
    (ping,) = server.datagrams_to_send(now=5.0)
    assert wire.decode_datagram_untrusted(ping[0]).flags & wire.FLAG_PING
    assert server.statistics().probes_sent == probes + 1
    timer = server.get_timer()
    assert timer is not None
    assert 5.0 < timer < 0.001 + CONFIG.peer_timeout  # a probe timer again
    assert len(drive_timers(server, 5.0, 12.0)) <= FIRES_PER_BLOCKED_PEER


def test_a_validated_peer_gets_its_reply_after_being_blocked() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, b"?", now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    drain(server)
    server.send_message(CLIENT, REPLY, now=0.001)
    held = server.datagrams_to_send(now=0.001)  # PINGs lost: the client hears nothing
    assert held
    drive_timers(server, 0.001, 3.0)  # blocked by now
    assert server.get_timer() == 0.001 + CONFIG.peer_timeout
    # The path heals: the client's next datagram reaches the server, the server's PING the
    # client, whose ACK echoes the server's epoch and validates it; the reply follows.
    client.send_message(SERVER, b"still there?", now=3.0)
    transfer(client, CLIENT, server, now=3.0)
    transfer(server, SERVER, client, now=3.0)
    client.handle_timer(now=3.005)
    transfer(client, CLIENT, server, now=3.005)
    peer = server.peer_statistics(CLIENT)
    assert peer is not None
    assert peer.validated
    transfer(server, SERVER, client, now=3.005)
    assert REPLY in [e.payload for e in drain(client) if isinstance(e, MessageReceived)]


def test_input_is_processed_while_timers_are_due() -> None:
    server, _ = blocked_server(20)
    legit = Endpoint(CONFIG, accept_new_peers=False, epoch=99)
    now = 0.5  # every blocked peer's first probe timeout has passed: their timers are due
    timer = server.get_timer()
    assert timer is not None
    assert timer <= now
    legit.send_message(SERVER, b"call", now=now)
    transfer(legit, CLIENT, server, now=now)  # before any timer runs
    assert [e.payload for e in drain(server) if isinstance(e, MessageReceived)] == [b"call"]
    server.send_message(CLIENT, b"reply", now=now)
    transfer(server, SERVER, legit, now=now)
    assert [e.payload for e in drain(legit) if isinstance(e, MessageReceived)] == [b"reply"]
    # The due timers still run, once.
    server.handle_timer(now=now)
    server.datagrams_to_send(now=now)
    timer = server.get_timer()
    assert timer is None or timer > now


# -- a deadline in the past fires once, whatever its cause -------------------------------------


def assert_fires_once(endpoint: Endpoint, now: float) -> None:
    timer = endpoint.get_timer()
    assert timer is not None
    assert timer <= now  # due (late)
    endpoint.handle_timer(now=now)
    endpoint.datagrams_to_send(now=now)
    timer = endpoint.get_timer()
    assert timer is None or timer > now


def test_a_late_probe_timeout_fires_once_even_before_the_flush() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    client.send_message(SERVER, b"hello", now=0.0)
    client.datagrams_to_send(now=0.0)
    client.handle_timer(now=8.0)  # the 0.305 s probe timeout, 7.7 s late
    timer = client.get_timer()  # the probe is not sent yet, and its timer is not in the past
    assert timer is not None
    assert timer > 8.0
    assert len(client.datagrams_to_send(now=8.0)) == 1


def test_a_late_ack_deadline_fires_once() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, b"one-way", now=0.0)
    transfer(client, CLIENT, server, now=0.0)
    assert_fires_once(server, 3.0)  # the 5 ms ack delay, 3 s late


def test_a_late_loss_timer_fires_once() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, b"a", now=0.0)
    client.send_message(SERVER, b"b", now=0.0)
    transfer(client, CLIENT, server, now=0.0, drop=frozenset({0}))
    server.handle_timer(now=0.005)
    transfer(server, SERVER, client, now=0.01)  # acknowledges "b" only: "a" is not yet lost
    assert client.statistics().lost_packets == 0
    assert_fires_once(client, 0.5)  # its time threshold passed long ago
    assert client.statistics().lost_packets == 1


def test_a_late_liveness_deadline_fires_once() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    client.send_message(SERVER, b"hello", now=0.0)
    client.datagrams_to_send(now=0.0)
    assert_fires_once(client, 30.0)
    assert [type(e) for e in drain(client)] == [PeerUnreachable]


def test_a_late_reassembly_timeout_fires_once() -> None:
    client = Endpoint(CONFIG, accept_new_peers=False, epoch=1)
    server = Endpoint(CONFIG, accept_new_peers=True, epoch=2)
    client.send_message(SERVER, random.Random(1).randbytes(3000), now=0.0)
    transfer(client, CLIENT, server, now=0.0, drop=frozenset({1, 2}))  # one fragment of three
    server.handle_timer(now=0.005)
    server.datagrams_to_send(now=0.005)
    assert_fires_once(server, CONFIG.reassembly_timeout + 5.0)
    assert server.statistics().reassembly_timeouts == 1


# -- the same, over random traffic ---------------------------------------------------------------

SPOOFED: Address = ("10.7.7.7", 7000)  # its datagrams reach the server; nothing reaches it


class Sim:
    """Two clients and a server on a virtual clock; every timer fire is checked."""

    def __init__(self, seed: int, loss: float) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.now = 0.0
        self.nodes: dict[Address, Endpoint] = {
            CLIENT: Endpoint(CONFIG, accept_new_peers=False, epoch=0xC1),
            SPOOFED: Endpoint(CONFIG, accept_new_peers=False, epoch=0xC2),
            SERVER: Endpoint(CONFIG, accept_new_peers=True, epoch=0x5E),
        }
        self.last_fire = dict.fromkeys(self.nodes, -math.inf)
        self.wire: list[tuple[float, int, bytes, Address, Address]] = []
        self.seq = 0
        self.fires = 0
        self.server_to_client = True  # the link that validates CLIENT

    def flush(self, src: Address) -> None:
        for data, dst in self.nodes[src].datagrams_to_send(now=self.now):
            if dst == SPOOFED or (dst == CLIENT and not self.server_to_client):
                continue
            if self.rng.random() < self.loss:
                continue
            self.seq += 1
            arrival = self.now + self.rng.uniform(0.0005, 0.02)
            heapq.heappush(self.wire, (arrival, self.seq, data, src, dst))

    def deliver(self) -> None:
        while self.wire and self.wire[0][0] <= self.now:
            _, _, data, src, dst = heapq.heappop(self.wire)
            self.nodes[dst].receive_datagram(data, src, now=self.now)
            self.flush(dst)
        for endpoint in self.nodes.values():
            drain(endpoint)

    def fire_due(self) -> None:
        for addr, endpoint in self.nodes.items():
            timer = timer_deadline(endpoint.get_timer(), self.last_fire[addr])
            if timer is None or timer > self.now:
                continue
            endpoint.handle_timer(now=self.now)
            self.flush(addr)
            self.fires += 1
            self.last_fire[addr] = self.now
            # A deadline that has passed fired; with no new input it is never due again.
            after = endpoint.get_timer()
            assert after is None or after > self.now, (addr, self.now, after)
            drain(endpoint)

    def next_time(self) -> float | None:
        times = [self.wire[0][0]] if self.wire else []
        for addr, endpoint in self.nodes.items():
            timer = timer_deadline(endpoint.get_timer(), self.last_fire[addr])
            if timer is not None:
                times.append(timer)
        return min(times, default=None)

    def run_until(self, until: float) -> None:
        """Every arrival and timer on time, up to ``until``."""
        while (when := self.next_time()) is not None and when <= until:
            self.now = max(self.now, when)
            self.deliver()
            self.fire_due()
        self.now = max(self.now, until)

    def oversleep(self, until: float) -> None:
        """A driver that woke late: everything up to ``until`` is processed at ``until``."""
        self.now = max(self.now, until)
        self.deliver()
        self.fire_due()


actions = st.one_of(
    st.tuples(st.sampled_from(["call", "spoofed_call", "reply", "spoofed_reply"]),
              st.integers(0, 6000)),
    st.tuples(st.sampled_from(["wait", "oversleep"]), st.integers(0, 4000)),
    st.tuples(st.just("link"), st.integers(0, 1)),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.lists(actions, min_size=1, max_size=25),
    st.integers(0, 2**32),
    st.sampled_from([0.0, 0.1, 0.5]),
)
def test_after_a_timer_round_no_deadline_is_left_in_the_past(
    script: list[tuple[str, int]], seed: int, loss: float
) -> None:
    sim = Sim(seed, loss)
    payloads = random.Random(seed)
    for action, arg in script:
        if action in ("call", "spoofed_call"):
            src = CLIENT if action == "call" else SPOOFED
            sim.nodes[src].send_message(SERVER, payloads.randbytes(arg), now=sim.now)
            sim.flush(src)
        elif action in ("reply", "spoofed_reply"):
            dst = CLIENT if action == "reply" else SPOOFED
            server = sim.nodes[SERVER]
            if server.peer_statistics(dst) is not None:  # only to a client it heard from
                server.send_message(dst, payloads.randbytes(arg * 4), now=sim.now)
                sim.flush(SERVER)
        elif action == "wait":
            sim.run_until(sim.now + arg / 1000)
        elif action == "oversleep":
            sim.oversleep(sim.now + arg / 100)
        else:
            sim.server_to_client = bool(arg)
    # Left alone, everything settles: a bounded number of fires (backed-off probes up to
    # max_pto, then liveness), not one per millisecond.
    fires = sim.fires
    sim.run_until(sim.now + 30.0)
    assert sim.fires - fires <= 3 * 30 * FIRES_PER_BLOCKED_PEER
