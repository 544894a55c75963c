"""RetryPolicy: which failures are retried, the backoff, the one deadline, both clients."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

import rpc
from rpc.calls.retry import Retries, combined_outcome, worth_retrying
from rpc.errors import CallOutcome, ProtocolError, ServerRestarted
from rpc.testing import LinkFaults, SimNetwork
from tests.runtime.harness import SERVER_ADDR, HeldBump, LabImpl, LabV1Impl, sim_server
from tests.runtime.lab_service import LAB_V2, MISSING_METHOD, DivideByZero

BUMP = next(m for m in LAB_V2.methods if m.name == "bump")  # cached (at most once)
SLEEP = next(m for m in LAB_V2.methods if m.name == "sleep")  # idempotent
RECORD = next(m for m in LAB_V2.methods if m.name == "record")  # oneway
DIVIDE = next(m for m in LAB_V2.methods if m.name == "divide")
CRASH = next(m for m in LAB_V2.methods if m.name == "crash")

#: No jitter: the n-th retry waits exactly 0.1 * 2**(n-1) seconds, at most 0.4.
STEADY = rpc.RetryPolicy(attempts=5, initial_backoff=0.1, max_backoff=0.4, jitter=0.0)


@contextlib.asynccontextmanager
async def busy_lab(
    impl: LabImpl, *, retry: rpc.RetryPolicy | None = None, seed: int = 1
) -> AsyncIterator[tuple[SimNetwork, rpc.Server, rpc.Client]]:
    """A Lab server with one handler slot and no queue (a second call gets ``ServerBusy``)."""
    net = SimNetwork(seed)
    async with sim_server(net, [impl, LabV1Impl()], max_concurrent=1, max_queued=0) as server, \
            rpc.connect(*SERVER_ADDR, socket=net.socket(), retry=retry) as client:
        yield net, server, client


# -- the policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"attempts": 0}, {"attempts": 2.0}, {"attempts": True}, {"initial_backoff": -0.1},
        {"initial_backoff": float("nan")}, {"max_backoff": float("inf")},
        {"initial_backoff": 1.0, "max_backoff": 0.5}, {"multiplier": 0.5},
        {"multiplier": "2"}, {"jitter": 1.5}, {"jitter": -0.1}, {"jitter": True},
        {"rng": 42},
    ],
)
def test_invalid_policies_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(rpc.InvalidArgument) as info:
        rpc.RetryPolicy(**fields)
    assert "RetryPolicy." in info.value.message


def test_no_retry_is_one_attempt_and_policies_compare_without_their_rng() -> None:
    assert rpc.NO_RETRY.attempts == 1
    assert rpc.RetryPolicy(rng=random.Random(1)) == rpc.RetryPolicy()
    assert rpc.RetryPolicy().attempts == 3


def test_full_jitter_backoff_stays_within_its_exponential_cap() -> None:
    policy = rpc.RetryPolicy(initial_backoff=0.1, max_backoff=1.0, rng=random.Random(7))
    caps = [min(0.1 * 2 ** (n - 1), 1.0) for n in range(1, 12)]
    assert [policy.backoff_cap(n) for n in range(1, 12)] == pytest.approx(caps)
    for _ in range(200):
        for n, cap in enumerate(caps, start=1):
            assert 0.0 < policy.backoff(n) <= cap
    # The same seed gives the same sleeps; the draws are spread over the whole range.
    first = rpc.RetryPolicy(rng=random.Random(3))
    again = rpc.RetryPolicy(rng=random.Random(3))
    draws = [first.backoff(4) for _ in range(100)]
    assert draws == [again.backoff(4) for _ in range(100)]
    assert min(draws) < 0.1 * first.backoff_cap(4)
    assert max(draws) > 0.9 * first.backoff_cap(4)
    assert policy.backoff_cap(10_000) == 1.0  # no overflow far past the cap


def test_partial_and_no_jitter() -> None:
    none = rpc.RetryPolicy(initial_backoff=0.2, jitter=0.0, rng=random.Random(1))
    assert [none.backoff(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    half = rpc.RetryPolicy(initial_backoff=0.2, jitter=0.5, rng=random.Random(1))
    assert all(0.1 <= half.backoff(1) <= 0.2 for _ in range(100))


@pytest.mark.parametrize(
    ("error", "cached", "idempotent"),
    [
        (rpc.ServerBusy("busy"), True, True),
        (rpc.ShuttingDown("bye"), True, True),
        (ServerRestarted("new epoch", outcome=CallOutcome.NOT_EXECUTED), True, True),
        (rpc.PeerUnreachable("gone", outcome=CallOutcome.NOT_DELIVERED), True, True),
        (rpc.PeerUnreachable("gone", outcome=CallOutcome.UNKNOWN), False, True),
        (rpc.DeadlineExceeded("late", outcome=CallOutcome.UNKNOWN), False, True),
        (ProtocolError("odd"), False, True),
        (rpc.RemoteError("KeyError", "k"), False, False),
        (DivideByZero(dividend=1), False, False),
        (rpc.UnknownMethod("no"), False, False),
        (rpc.UnknownService("no"), False, False),
        (rpc.VersionMismatch("no", low=1, high=1), False, False),
        (rpc.InvalidArgument("bad", outcome=CallOutcome.NOT_DELIVERED), False, False),
        (rpc.InvalidArgument("bad"), False, False),
        (rpc.MessageTooLarge("big"), False, False),
        (rpc.ClientClosed("closed"), False, False),
        (ProtocolError("bad result", outcome=CallOutcome.EXECUTED), False, False),
    ],
)
def test_what_is_worth_retrying(error: rpc.RpcError, cached: bool, idempotent: bool) -> None:
    assert worth_retrying(error, idempotent=False) is cached
    assert worth_retrying(error, idempotent=True) is idempotent


def test_the_outcome_of_several_attempts_is_the_most_any_may_have_done() -> None:
    nd, ne, unknown = CallOutcome.NOT_DELIVERED, CallOutcome.NOT_EXECUTED, CallOutcome.UNKNOWN
    assert combined_outcome(ne, nd) is ne
    assert combined_outcome(nd, ne) is ne
    assert combined_outcome(unknown, nd) is unknown
    assert combined_outcome(ne, unknown) is unknown
    assert combined_outcome(unknown, CallOutcome.EXECUTED) is CallOutcome.EXECUTED
    retries = Retries(rpc.RetryPolicy(attempts=3, jitter=0.0), idempotent=True)
    assert retries.next_delay(rpc.PeerUnreachable("x"), 0.0, None) == 0.05
    final = rpc.ServerBusy("busy")
    assert retries.next_delay(final, 1.0, 1.06) is None  # 1.0 + 0.1 would pass the deadline
    assert final.outcome is unknown  # the first attempt may have run
    assert final.attempts == 2
    assert "ServerBusy" not in "".join(final.__notes__)  # names the earlier failures only
    assert "PeerUnreachable" in "".join(final.__notes__)


def test_safe_to_retry_honours_idempotent() -> None:
    error = rpc.PeerUnreachable("gone", outcome=CallOutcome.UNKNOWN)
    before = error.safe_to_retry
    error.idempotent = True
    assert (before, error.safe_to_retry) == (False, True)
    executed = DivideByZero(dividend=0)
    executed.idempotent = True
    assert executed.safe_to_retry
    assert not worth_retrying(executed, idempotent=True)
    assert not CallOutcome.UNKNOWN.safe_to_retry  # the outcome's own rule is unchanged


# -- the async client -------------------------------------------------------------------------


async def hold_the_slot(impl: HeldBump, client: rpc.Client, nursery: trio.Nursery) -> None:
    nursery.start_soon(client.call, LAB_V2, BUMP, ("held",))
    await impl.entered.wait()


async def release_at(release: trio.Event, when: float) -> None:
    await trio.sleep_until(when)
    release.set()


async def test_server_busy_is_retried_with_backoff_until_it_succeeds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = HeldBump()
    async with busy_lab(impl) as (_, server, client), trio.open_nursery() as nursery:
        await hold_the_slot(impl, client, nursery)
        start = trio.current_time()
        nursery.start_soon(release_at, impl.release, start + 0.25)
        # Attempts at +0 and +0.1 are refused; the one at +0.3 gets the freed slot.
        assert await client.call(LAB_V2, BUMP, ("k",), retry=STEADY) == 1
        assert trio.current_time() - start == pytest.approx(0.3, abs=0.02)
        stats = client.statistics()
    assert server.statistics().calls_failed["SERVER_BUSY"] == 2
    assert stats.retries == 2
    assert (stats.calls_started, stats.calls_succeeded, dict(stats.calls_failed)) == (2, 2, {})
    assert impl.counters == {"held": 1, "k": 1}


async def test_without_a_policy_nothing_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = HeldBump()
    async with busy_lab(impl) as (_, _, client), trio.open_nursery() as nursery:
        await hold_the_slot(impl, client, nursery)
        with pytest.raises(rpc.ServerBusy) as info:
            await client.call(LAB_V2, BUMP, ("k",))
        assert client.statistics().retries == 0
        impl.release.set()
    assert info.value.attempts == 1
    assert info.value.outcome is CallOutcome.NOT_EXECUTED


async def test_a_client_default_applies_to_every_call_and_no_retry_turns_it_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = HeldBump()
    async with busy_lab(impl, retry=STEADY) as (_, _, client), trio.open_nursery() as nursery:
        await hold_the_slot(impl, client, nursery)
        start = trio.current_time()
        with pytest.raises(rpc.ServerBusy) as off:
            await client.call(LAB_V2, BUMP, ("k",), retry=rpc.NO_RETRY)
        assert trio.current_time() == start  # refused at once, no backoff
        assert client.statistics().retries == 0
        with pytest.raises(rpc.ServerBusy) as other:  # a per-call policy replaces the default
            await client.call(
                LAB_V2, BUMP, ("k",), retry=dataclasses.replace(STEADY, attempts=2)
            )
        assert client.statistics().retries == 1
        nursery.start_soon(release_at, impl.release, trio.current_time() + 0.25)
        assert await client.call(LAB_V2, BUMP, ("k",)) == 1  # the default: retried
        assert client.statistics().retries == 3
    assert (off.value.attempts, other.value.attempts) == (1, 2)
    assert "attempt 2 of at most 2; earlier attempts failed with ServerBusy" in "".join(
        other.value.__notes__
    )


async def test_a_refused_oneway_call_is_retried_and_runs_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = HeldBump()
    async with busy_lab(impl) as (_, _, client), trio.open_nursery() as nursery:
        await hold_the_slot(impl, client, nursery)
        nursery.start_soon(release_at, impl.release, trio.current_time() + 0.05)
        await client.call(LAB_V2, RECORD, ("once",), retry=STEADY)
        for _ in range(100):
            if impl.records:
                break
            await trio.sleep(0.001)
        assert client.statistics().retries == 1
    assert impl.records == ["once"]


async def test_an_unknown_outcome_is_not_retried_for_a_cached_method(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with busy_lab(impl) as (net, _, client):
        assert await client.call(LAB_V2, BUMP, ("k",)) == 1  # learn the epoch
        net.set_faults(SERVER_ADDR, None, LinkFaults(loss=1.0))  # replies and acks vanish
        with pytest.raises(rpc.PeerUnreachable) as info:
            await client.call(LAB_V2, BUMP, ("k",), retry=STEADY)
        net.set_faults(SERVER_ADDR, None, LinkFaults())
        stats = client.statistics()
    assert net.statistics().dropped_loss > 0
    assert impl.counters["k"] == 2  # it ran, once: a retry could have run it again
    assert info.value.outcome is CallOutcome.UNKNOWN
    assert not info.value.safe_to_retry
    assert (info.value.attempts, stats.retries) == (1, 0)


async def test_an_unknown_outcome_is_retried_for_an_idempotent_method(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = LabImpl()
    async with busy_lab(impl) as (net, _, client):
        net.set_faults(SERVER_ADDR, None, LinkFaults(loss=1.0))

        async def heal() -> None:
            await trio.sleep(12.0)  # after the first attempt's PeerUnreachable (10 s)
            net.set_faults(SERVER_ADDR, None, LinkFaults())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(heal)
            policy = rpc.RetryPolicy(initial_backoff=1.0, max_backoff=1.0, jitter=0.0)
            await client.call(LAB_V2, SLEEP, (0.5,), timeout=60.0, retry=policy)
        stats = client.statistics()
    assert net.statistics().dropped_loss > 0
    assert stats.retries == 1
    assert impl.sleep_finished == 2  # it ran twice: harmless, the method is idempotent


async def test_an_undelivered_call_is_retried_for_a_cached_method(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The handshake ping never gets through: PeerUnreachable, NOT_DELIVERED (the CALL was
    # never sent), so even a cached call may be tried again, and it then runs once.
    impl = LabImpl()
    async with busy_lab(impl) as (net, _, client):
        net.partition(SERVER_ADDR, None)

        async def heal() -> None:
            await trio.sleep(10.5)
            net.heal()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(heal)
            policy = rpc.RetryPolicy(initial_backoff=1.0, max_backoff=1.0, jitter=0.0)
            assert await client.call(LAB_V2, BUMP, ("k",), timeout=60.0, retry=policy) == 1
        stats = client.statistics()
    assert net.statistics().dropped_partition > 0
    assert stats.retries == 1
    assert impl.counters["k"] == 1


async def test_application_remote_and_rejection_errors_are_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    always = rpc.RetryPolicy(attempts=10)
    async with busy_lab(LabImpl(), retry=always) as (_, server, client):
        with pytest.raises(DivideByZero):
            await client.call(LAB_V2, DIVIDE, (1, 0))
        with pytest.raises(rpc.RemoteError):
            await client.call(LAB_V2, CRASH, ("boom",))
        with pytest.raises(rpc.UnknownMethod):
            await client.call(LAB_V2, MISSING_METHOD, ())
        with pytest.raises(rpc.InvalidArgument):  # refused before sending
            await client.call(LAB_V2, DIVIDE, (2**40, 1))
        received = server.statistics().calls_received
        stats = client.statistics()
    assert received == 3
    assert stats.retries == 0
    assert stats.calls_failed == {
        "DivideByZero": 1, "RemoteError": 1, "UnknownMethod": 1, "InvalidArgument": 1,
    }


@pytest.mark.parametrize("seed", range(5))
async def test_retries_never_pass_the_deadline(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    impl = HeldBump()  # the slot is never freed: every attempt is refused
    policy = rpc.RetryPolicy(attempts=100, initial_backoff=0.05, max_backoff=0.4,
                             rng=random.Random(seed))
    async with busy_lab(impl) as (_, _, client), trio.open_nursery() as nursery:
        await hold_the_slot(impl, client, nursery)
        start = trio.current_time()
        with pytest.raises(rpc.ServerBusy) as info:
            await client.call(LAB_V2, BUMP, ("k",), timeout=1.0, retry=policy)
        elapsed = trio.current_time() - start
        impl.release.set()
    assert elapsed < 1.0
    assert 2 <= info.value.attempts < 100
    assert info.value.outcome is CallOutcome.NOT_EXECUTED


async def test_without_jitter_the_last_backoff_that_fits_is_the_last(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = HeldBump()
    policy = rpc.RetryPolicy(attempts=100, initial_backoff=0.05, max_backoff=0.4, jitter=0.0)
    async with busy_lab(impl) as (_, _, client), trio.open_nursery() as nursery:
        await hold_the_slot(impl, client, nursery)
        start = trio.current_time()
        with pytest.raises(rpc.ServerBusy) as info:
            await client.call(LAB_V2, BUMP, ("k",), timeout=1.0, retry=policy)
        elapsed = trio.current_time() - start
        impl.release.set()
    # Attempts at 0, 0.05, 0.15, 0.35 and 0.75; the next would wait 0.4 and reach 1.15.
    assert info.value.attempts == 5
    assert elapsed == pytest.approx(0.75, abs=0.01)


class BusyThenSlow(LabImpl):
    """``bump("held")`` holds the one slot until released; any other bump takes a minute."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = trio.Event()
        self.release = trio.Event()

    async def bump(self, key: str) -> int:
        if key == "held":
            self.entered.set()
            await self.release.wait()
        else:
            await trio.sleep(60.0)
        return await super().bump(key)


async def test_the_deadline_ends_the_last_attempt_with_the_honest_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    impl = BusyThenSlow()
    async with busy_lab(impl) as (_, _, client), trio.open_nursery() as nursery:
        nursery.start_soon(client.call, LAB_V2, BUMP, ("held",))
        await impl.entered.wait()
        start = trio.current_time()
        nursery.start_soon(release_at, impl.release, start + 0.2)
        with pytest.raises(rpc.DeadlineExceeded) as info:
            await client.call(LAB_V2, BUMP, ("slow",), timeout=2.0, retry=STEADY)
        elapsed = trio.current_time() - start
    assert elapsed == pytest.approx(2.0, abs=0.01)  # not a moment past the one deadline
    assert info.value.attempts == 3  # refused at 0 and 0.1; the one at 0.3 ran out of time
    assert info.value.outcome is CallOutcome.UNKNOWN  # the last attempt was running
    assert not info.value.safe_to_retry


async def test_an_idempotent_call_that_ran_out_of_time_is_safe_to_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with busy_lab(LabImpl()) as (_, _, client):
        with pytest.raises(rpc.DeadlineExceeded) as slow:
            await client.call(LAB_V2, SLEEP, (60.0,), timeout=1.0, retry=STEADY)
        with pytest.raises(rpc.DeadlineExceeded) as cached:
            await client.call(LAB_V2, BUMP, ("k",), timeout=0.0)
    assert slow.value.outcome is CallOutcome.UNKNOWN
    assert slow.value.idempotent
    assert slow.value.safe_to_retry
    assert slow.value.attempts == 1  # the deadline had passed: no time for another
    assert not cached.value.idempotent


# -- the blocking client ----------------------------------------------------------------------


class FakeTime:
    """A SyncClient's clock and sleep for tests: sleeping only moves the clock forward."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    def install(self, client: rpc.SyncClient) -> None:
        client._clock = self.clock
        client._sleep = self.sleep


@contextlib.asynccontextmanager
async def busy_real_server(impl: HeldBump) -> AsyncIterator[tuple[int, trio.Event]]:
    """A one-slot server on 127.0.0.1 whose slot an async client holds until released.

    Yields the port and an event set once the holder's call returned (the slot is free).
    """
    freed = trio.Event()
    async with rpc.Server([impl], max_concurrent=1, max_queued=0) as server:
        host, port = server.address
        async with rpc.connect(host, port) as holder, trio.open_nursery() as nursery:

            async def hold() -> None:
                await holder.call(LAB_V2, BUMP, ("held",), timeout=30.0)
                freed.set()

            nursery.start_soon(hold)
            await impl.entered.wait()
            try:
                yield port, freed
            finally:
                impl.release.set()


@pytest.mark.realnet
async def test_the_blocking_client_retries_and_a_call_may_turn_it_off() -> None:
    impl = HeldBump()
    async with busy_real_server(impl) as (port, freed):

        async def free_the_slot() -> None:
            impl.release.set()
            await freed.wait()

        def on_sleep(count: int) -> None:
            if count == 1:  # free the slot during the first backoff: the retry succeeds
                trio.from_thread.run(free_the_slot)

        fake = FakeTime(on_sleep)
        with rpc.SyncClient("127.0.0.1", port, retry=STEADY) as client:
            fake.install(client)

            def refused() -> rpc.RpcError:
                with pytest.raises(rpc.ServerBusy) as off:
                    client.call(LAB_V2, BUMP, ("k",), timeout=10.0, retry=rpc.NO_RETRY)
                return off.value

            off = await trio.to_thread.run_sync(refused)
            assert fake.sleeps == []
            result = await trio.to_thread.run_sync(
                lambda: client.call(LAB_V2, BUMP, ("k",), timeout=10.0)
            )
            stats = client.statistics()
    assert (off.attempts, result, fake.sleeps) == (1, 1, [0.1])
    assert stats.retries == 1
    assert stats.calls_started == 2
    assert stats.calls_failed == {"ServerBusy": 1}


@pytest.mark.realnet
async def test_the_blocking_client_keeps_retries_within_the_deadline() -> None:
    impl = HeldBump()  # the slot stays taken: every attempt is refused
    policy = rpc.RetryPolicy(attempts=100, initial_backoff=0.05, max_backoff=0.4, jitter=0.0)
    fake = FakeTime()
    async with busy_real_server(impl) as (port, _):
        with rpc.SyncClient("127.0.0.1", port) as client:
            fake.install(client)
            start = fake.clock()

            def refused() -> rpc.RpcError:
                with pytest.raises(rpc.ServerBusy) as info:
                    client.call(LAB_V2, BUMP, ("k",), timeout=1.0, retry=policy)
                return info.value

            error = await trio.to_thread.run_sync(refused)
            elapsed = fake.clock() - start
            stats = client.statistics()
    assert error.outcome is CallOutcome.NOT_EXECUTED
    # Each sleep is the next backoff, and the one that would reach the deadline is not slept:
    # after 0.05 + 0.1 + 0.2 + 0.4 s of backoff, another 0.4 s would pass the deadline.
    assert fake.sleeps == [0.05, 0.1, 0.2, 0.4]
    assert elapsed < 1.0
    assert error.attempts == 5
    assert stats.retries == 4


@pytest.mark.realnet
async def test_a_blocking_call_backing_off_lets_other_threads_call() -> None:
    impl = HeldBump()
    others: list[object] = []
    async with busy_real_server(impl) as (port, freed):
        with rpc.SyncClient("127.0.0.1", port) as client:

            async def free_the_slot() -> None:
                impl.release.set()
                await freed.wait()

            def other_thread() -> None:
                try:
                    client.call(LAB_V2, DIVIDE, (6, 3), timeout=10.0)
                except rpc.RpcError as exc:
                    others.append(exc)

            def on_sleep(count: int) -> None:
                if count == 1:  # the client's lock is free while this call backs off
                    worker = threading.Thread(target=other_thread)
                    worker.start()
                    worker.join(10.0)
                    trio.from_thread.run(free_the_slot)

            FakeTime(on_sleep).install(client)
            result = await trio.to_thread.run_sync(
                lambda: client.call(LAB_V2, BUMP, ("k",), timeout=10.0, retry=STEADY)
            )
    assert result == 1
    # The other thread's call was made (and refused: the slot was still taken) meanwhile.
    assert len(others) == 1
    assert isinstance(others[0], rpc.ServerBusy)
