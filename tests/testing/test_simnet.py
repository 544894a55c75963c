"""The simulated network: deterministic, each fault at about its rate and counted, bounded."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from rpc.testing import DropCause, GilbertElliott, LinkFaults, SimNetwork, SimSocket, TraceEvent

N = 4000  # datagrams per rate test: 4 sigma of a 10% rate is about 1.9 points


async def pump(sender: SimSocket, receiver: SimSocket, count: int, spacing: float) -> list[bytes]:
    """Send ``count`` numbered datagrams ``spacing`` apart; return what arrived within 1 s."""
    for i in range(count):
        await sender.sendto(i.to_bytes(4, "big") + bytes(12), receiver.getsockname())
        if spacing:
            await trio.sleep(spacing)
    await trio.sleep(1.0)
    got: list[bytes] = []
    while (item := receiver.try_recvfrom(65536)) is not None:
        got.append(item[0])
    return got


async def run_link(
    faults: LinkFaults, count: int = N, seed: int = 7, spacing: float = 0.0
) -> tuple[SimNetwork, list[bytes]]:
    net = SimNetwork(seed=seed, faults=faults, queue_limit=count * 2)
    a, b = net.socket(), net.socket()
    return net, await pump(a, b, count, spacing)


def near(value: float, expected: float, tolerance: float) -> bool:
    return abs(value - expected) <= tolerance


async def test_clean_network_delivers_everything_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net, got = await run_link(LinkFaults(), count=100, spacing=0.001)
    assert [int.from_bytes(d[:4], "big") for d in got] == list(range(100))
    stats = net.statistics()
    assert (stats.sent, stats.delivered, stats.dropped) == (100, 100, 0)
    assert stats.bytes_sent == stats.bytes_delivered == 1600


async def test_same_seed_gives_the_same_trace(autojump_clock: trio.testing.MockClock) -> None:
    faults = LinkFaults(loss=0.2, duplicate=0.2, reorder=0.2, jitter=0.004, corrupt=0.1)
    traces = []
    for seed in (3, 3, 4):
        net, _ = await run_link(faults, count=300, seed=seed, spacing=0.001)
        traces.append(net.trace())
    assert traces[0] == traces[1]
    assert traces[0] != traces[2]
    assert all(isinstance(e, TraceEvent) for e in traces[0])


async def test_loss_rate_is_counted(autojump_clock: trio.testing.MockClock) -> None:
    net, got = await run_link(LinkFaults(loss=0.3))
    stats = net.statistics()
    assert near(stats.dropped_loss / N, 0.3, 0.03)
    assert stats.delivered == len(got) == N - stats.dropped_loss


async def test_burst_loss_keeps_the_long_run_rate_and_comes_in_bursts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net, got = await run_link(LinkFaults(loss=0.3, burst_max=3))
    assert near(net.statistics().dropped_loss / N, 0.3, 0.04)
    numbers = [int.from_bytes(d[:4], "big") for d in got]
    gaps = [b - a - 1 for a, b in itertools.pairwise(numbers) if b - a > 1]
    assert max(gaps) >= 3
    mean_burst = sum(gaps) / len(gaps)
    assert mean_burst > 1.5  # bursts of 1..3 average 2; single losses would average about 1.4


async def test_gilbert_elliott_losses_cluster(autojump_clock: trio.testing.MockClock) -> None:
    channel = GilbertElliott(p=0.05, r=0.25, loss_good=0.0, loss_bad=1.0)
    net, got = await run_link(LinkFaults(gilbert=channel))
    # Stationary bad-state share is p / (p + r) = 1/6.
    assert near(net.statistics().dropped_loss / N, 1 / 6, 0.05)
    numbers = [int.from_bytes(d[:4], "big") for d in got]
    gaps = [b - a - 1 for a, b in itertools.pairwise(numbers) if b - a > 1]
    assert sum(gaps) / len(gaps) > 2.5  # mean burst length is 1 / r = 4


async def test_duplication_rate_is_counted(autojump_clock: trio.testing.MockClock) -> None:
    net, got = await run_link(LinkFaults(duplicate=0.25))
    stats = net.statistics()
    assert near(stats.duplicated / N, 0.25, 0.03)
    assert len(got) == N + stats.duplicated == stats.delivered


async def test_reordering_is_counted_and_really_reorders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net, got = await run_link(LinkFaults(reorder=0.2, reorder_delay=0.0035), spacing=0.001)
    stats = net.statistics()
    numbers = [int.from_bytes(d[:4], "big") for d in got]
    late, highest = 0, -1
    for n in numbers:
        late += n < highest
        highest = max(highest, n)
    assert near(stats.held_back / N, 0.2, 0.03)
    assert stats.reordered == late > N * 0.1
    assert sorted(numbers) == list(range(N))


async def test_delay_and_jitter_shift_arrivals(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=1, faults=LinkFaults(delay=0.050, jitter=0.010))
    a, b = net.socket(), net.socket()
    arrivals = []
    for _ in range(50):
        start = trio.current_time()
        await a.sendto(b"x", b.getsockname())
        await b.recvfrom(10)
        arrivals.append(trio.current_time() - start)
    assert all(0.050 <= t <= 0.060 for t in arrivals)
    assert max(arrivals) - min(arrivals) > 0.005
    assert net.statistics().delayed == 50


async def test_corruption_flips_bytes_anywhere(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=2, faults=LinkFaults(corrupt=0.2), queue_limit=N)
    a, b = net.socket(), net.socket()
    original = bytes(range(64))
    for _ in range(N):
        await a.sendto(original, b.getsockname())
    positions: set[int] = set()
    damaged = 0
    while (item := b.try_recvfrom(100)) is not None:
        if item[0] != original:
            damaged += 1
            assert len(item[0]) == len(original)
            positions.update(i for i in range(64) if item[0][i] != original[i])
    assert damaged == net.statistics().corrupted
    assert near(damaged / N, 0.2, 0.03)
    assert positions == set(range(64))  # the header and checksum areas are not spared


async def test_truncation_shortens(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=2, faults=LinkFaults(truncate=0.1), queue_limit=N)
    a, b = net.socket(), net.socket()
    for _ in range(N):
        await a.sendto(bytes(100), b.getsockname())
    short = 0
    while (item := b.try_recvfrom(1000)) is not None:
        short += len(item[0]) < 100
    assert short == net.statistics().truncated
    assert near(short / N, 0.1, 0.02)


async def test_blackhole_window_drops_everything_then_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=0)
    a, b = net.socket(), net.socket()
    net.blackhole(2.0, dst=b.getsockname())
    await a.sendto(b"during", b.getsockname())
    await b.sendto(b"other way", a.getsockname())
    await trio.sleep(2.0)
    await a.sendto(b"after", b.getsockname())
    assert b.try_recvfrom(100) == (b"after", a.getsockname())
    assert a.try_recvfrom(100) == (b"other way", b.getsockname())
    assert net.statistics().dropped_blackhole == 1


async def test_configured_blackhole_windows(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=0, faults=LinkFaults(blackholes=((1.0, 2.0),)))
    a, b = net.socket(), net.socket()
    for t in range(4):
        await a.sendto(bytes([t]), b.getsockname())
        await trio.sleep(0.6)
    received = []
    while (item := b.try_recvfrom(10)) is not None:
        received.append(item[0][0])
    assert received == [0, 1]  # sent at 0.0, 0.6, 1.2, 1.8: the last two fall in [1, 2)
    assert net.statistics().dropped_blackhole == 2


async def test_partition_and_heal(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=0)
    a, b, c = net.socket(), net.socket(), net.socket()
    net.partition(a.getsockname()[0], b.getsockname())
    await a.sendto(b"1", b.getsockname())
    await b.sendto(b"2", a.getsockname())
    await a.sendto(b"3", c.getsockname())
    assert net.statistics().dropped_partition == 2
    assert c.try_recvfrom(10) == (b"3", a.getsockname())
    net.heal()
    await a.sendto(b"4", b.getsockname())
    assert b.try_recvfrom(10) == (b"4", a.getsockname())


async def test_faults_per_direction_and_runtime_changes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=0)
    a, b = net.socket(), net.socket()
    net.set_faults(a.getsockname(), b.getsockname(), LinkFaults(loss=1.0))
    await a.sendto(b"lost", b.getsockname())
    await b.sendto(b"back", a.getsockname())
    assert b.try_recvfrom(10) is None
    assert a.try_recvfrom(10) == (b"back", b.getsockname())
    assert net.link_statistics(a.getsockname(), b.getsockname()).dropped_loss == 1
    assert net.link_statistics(b.getsockname(), a.getsockname()).dropped == 0
    net.set_faults(a.getsockname(), b.getsockname(), LinkFaults())
    await a.sendto(b"now", b.getsockname())
    assert b.try_recvfrom(10) == (b"now", a.getsockname())


async def test_the_most_specific_rule_wins(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=0, faults=LinkFaults(loss=1.0))
    a, b, c = net.socket(("10.1.0.1", 1)), net.socket(("10.1.0.2", 1)), net.socket(("10.1.0.2", 2))
    net.set_faults(None, "10.1.0.2", LinkFaults(duplicate=1.0))  # a host beats everything
    net.set_faults_both_ways(
        a.getsockname(), c.getsockname(), LinkFaults()
    )  # an address beats a host
    await a.sendto(b"to b", b.getsockname())
    await a.sendto(b"to c", c.getsockname())
    await c.sendto(b"to a", a.getsockname())
    assert [b.try_recvfrom(10), b.try_recvfrom(10)] == [(b"to b", a.getsockname())] * 2
    assert c.try_recvfrom(10) == (b"to c", a.getsockname())
    assert c.try_recvfrom(10) is None
    assert a.try_recvfrom(10) == (b"to a", c.getsockname())
    assert net.faults(b.getsockname(), a.getsockname()).loss == 1.0


async def test_bounded_queue_drops_and_counts(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=0, queue_limit=5)
    a, b = net.socket(), net.socket()
    for i in range(8):
        await a.sendto(bytes([i]), b.getsockname())
    assert net.statistics().dropped_queue_full == 3
    received = [b.try_recvfrom(10) for _ in range(6)]
    assert [r[0] for r in received if r] == [bytes([i]) for i in range(5)]
    assert received[5] is None


async def test_unreachable_and_closed_sockets(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=0)
    a, b = net.socket(("10.9.9.9", 0)), net.socket()
    assert a.getsockname() == ("10.9.9.9", 49152)
    await a.sendto(b"nobody", ("10.1.1.1", 1))
    assert net.statistics().dropped_unreachable == 1

    async def wait_then_close() -> None:
        await trio.sleep(1)
        b.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_then_close)
        with pytest.raises(trio.ClosedResourceError):
            await b.recvfrom(10)
    with pytest.raises(trio.ClosedResourceError):
        await b.sendto(b"x", a.getsockname())


async def test_trace_is_printable_and_bounded(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=0, trace_limit=10, faults=LinkFaults(loss=0.5))
    a, b = net.socket(), net.socket()
    for _ in range(20):
        await a.sendto(b"abc", b.getsockname())
    assert len(net.trace()) == 10
    text = net.format_trace()
    assert len(text.splitlines()) == 10
    assert "10.0.0.1:4000 -> 10.0.0.2:4000 3B" in text
    assert DropCause.LOSS.value in text or "deliver" in text


def test_fault_values_are_validated() -> None:
    with pytest.raises(ValueError, match="probability"):
        LinkFaults(loss=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        LinkFaults(burst_max=0)
