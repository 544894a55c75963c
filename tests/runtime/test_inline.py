"""Handlers that never suspend run inline in the receiving task, without a worker hop."""

from __future__ import annotations

import collections

import trio
import trio.testing

import rpc
from rpc._execution import AdmittedCall, Executor
from rpc.calls import callproto, schema
from rpc.calls._dispatch import CallPlan, never_suspends
from rpc.calls.reply_cache import ReplyCache
from tests.runtime.harness import LabImpl, sim_lab
from tests.runtime.lab_service import LabClient


class Shapes:
    """Handler bodies of every kind the check must tell apart."""

    async def plain(self, x: int) -> int:
        return x + 1

    async def scoped(self) -> int:
        with trio.move_on_after(1.0):
            return 2
        return 3

    async def awaits(self) -> None:
        await trio.sleep(0)

    async def async_with(self) -> None:
        async with trio.open_nursery():
            pass

    async def async_for(self, source: trio.MemoryReceiveChannel[int]) -> list[int]:
        return [x async for x in source]

    def not_async(self) -> int:
        return 1


def test_only_bodies_without_await_never_suspend() -> None:
    shapes = Shapes()
    judged = {
        name: never_suspends(getattr(shapes, name))
        for name in ("plain", "scoped", "awaits", "async_with", "async_for", "not_async")
    }
    assert judged == {
        "plain": True, "scoped": True, "awaits": False, "async_with": False,
        "async_for": False, "not_async": False,
    }


async def test_non_suspending_handlers_need_no_worker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_lab(LabImpl()) as (_, server, client):
        lab = LabClient(client)
        for n in range(5):
            assert await lab.bump("k", timeout=5.0) == n + 1  # bump never awaits
        assert "#" in await lab.whoami()  # rpc.current_call() works inline too
        inline_workers = server._calls._pool.workers if server._calls._pool else -1
        await lab.blocking_sum([1, 2])  # awaits a thread: runs in a worker
        worker_workers = server._calls._pool.workers if server._calls._pool else -1
    assert (inline_workers, worker_workers) == (0, 1)
    assert rpc.current_call() is None  # nothing leaked into this task's context
    assert server.statistics().calls_completed == 7


async def test_an_inline_call_counts_as_running_while_its_handler_runs() -> None:
    # The inline call is not registered for lookup (nothing can look it up meanwhile), yet
    # the statistics and the call list a handler could see must include it, as for a worker.
    method = rpc.MethodSpec[None](name="probe", number=1, params=(), result=None)
    spec = rpc.ServiceSpec(name="Probe", version=1, methods=(method,))
    sent: list[bytes] = []
    seen: list[tuple[int, bool, list[AdmittedCall]]] = []

    def send(addr: tuple[str, int], reply: bytes, now: float) -> int:
        sent.append(reply)
        return len(sent)

    executor = Executor(
        ReplyCache(), send, collections.Counter(), max_concurrent=2, max_queued=2,
        unacked=set(),
    )

    async def probe() -> None:
        seen.append((executor.running, executor.idle(), executor.calls()))

    plan = CallPlan(spec, method, probe)
    assert plan.inline
    addr = ("127.0.0.1", 9)
    call = AdmittedCall(addr, (addr, 5), 1, callproto.FLAG_IDEMPOTENT, plan, (), None)
    async with trio.open_nursery() as nursery:
        executor.start(nursery)
        executor.submit(call)
        assert seen == [(1, False, [call])]
        assert (executor.running, executor.idle(), executor.calls()) == (0, True, [])
        assert (executor.completed, len(sent)) == (1, 1)
        nursery.cancel_scope.cancel()


async def test_inline_handlers_that_raise_or_suspend_leave_the_next_call_unharmed() -> None:
    # The executor runs inline coroutines through one long-lived runner; a handler that
    # raises ends it and one that suspends (never_suspends was fooled) is closed with it.
    method = rpc.MethodSpec[int](name="probe", number=1, params=(), result=schema.I32)
    spec = rpc.ServiceSpec(name="Probe", version=1, methods=(method,))
    sent: list[bytes] = []
    closed: list[str] = []

    def send(addr: tuple[str, int], reply: bytes, now: float) -> int:
        sent.append(reply)
        return len(sent)

    async def fine() -> int:
        return 7

    async def fails() -> int:
        raise ValueError("no")

    class Suspends:
        def __await__(self):  # type: ignore[no-untyped-def]
            try:
                yield "suspended"
            finally:
                closed.append("closed")

    async def suspends() -> int:
        await Suspends()
        return 1

    executor = Executor(
        ReplyCache(), send, collections.Counter(), max_concurrent=2, max_queued=2,
        unacked=set(),
    )
    addr = ("127.0.0.1", 9)
    async with trio.open_nursery() as nursery:
        executor.start(nursery)
        for call_no, fn in enumerate([fine, fails, fine, suspends, fine], 1):
            plan = CallPlan(spec, method, fn)
            plan.inline = True  # as if never_suspends said so
            executor.submit(
                AdmittedCall(addr, (addr, 5), call_no, callproto.FLAG_IDEMPOTENT, plan, (), None)
            )
        nursery.cancel_scope.cancel()
    replies = [callproto.decode_reply_untrusted(callproto.unpack_untrusted(r)) for r in sent]
    assert [(r.call_no, r.status) for r in replies] == [
        (1, callproto.Status.OK), (2, callproto.Status.REMOTE_ERROR), (3, callproto.Status.OK),
        (4, callproto.Status.REMOTE_ERROR), (5, callproto.Status.OK),
    ]
    assert [replies[0].body, replies[2].body, replies[4].body] == [7, 7, 7]
    assert replies[3].body == ["RuntimeError", "handler suspended inline"]
    assert closed == ["closed"]
    assert (executor.completed, executor.running, executor.idle()) == (3, 0, True)
