"""Running admitted calls: the concurrency limit, the bounded wait queue, handlers and replies.

The server decides *whether* a call may run (``rpc.server``: epochs, the service table, the
reply cache, refusals); this module decides *when* and runs it. At most ``max_concurrent``
handlers run at once, in worker tasks (``rpc.drivers._workers``); up to ``max_queued`` more
calls wait in FIFO order. A handler runs under its worker's cancel scope with the call's deadline; a
cancelled or expired call sends no reply, a queued one that is cancelled or expires never starts.
"""

from __future__ import annotations

import collections
import math
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol

import trio

from rpc.calls import callproto
from rpc.calls._dispatch import CallPlan
from rpc.calls.callproto import Status
from rpc.calls.reply_cache import CacheEntry, ReplyCache, SessionKey
from rpc.calls.schema import ValidationError
from rpc.context import _CURRENT, CallContext
from rpc.drivers._workers import WorkerPool
from rpc.errors import SendBufferFull

Address = tuple[str, int]
CallId = tuple[SessionKey, int]


#: What the inline runner yields when a handler's coroutine has returned.
_RETURNED = object()


@types.coroutine
def _inline_runner(
    result: list[object],
) -> Generator[object, Coroutine[Any, Any, object], None]:
    """Run each coroutine sent in to completion; its return value goes to ``result[0]``.

    ``coro.send(None)`` hands a finished coroutine's value back as a ``StopIteration``, which
    costs about 2k instructions to raise and catch; a ``yield from`` gets it without one.
    A coroutine that raises ends the runner (with its exception); one that suspends makes
    the runner yield what it yielded (anything but _RETURNED). ``types.coroutine`` lets it
    ``yield from`` the coroutine itself: through ``coro.__await__()`` every call would also
    build a wrapper object and pass each step through it (about 1.3k instructions).
    """
    while True:
        coro = yield _RETURNED
        # mypy does not model yield from a coroutine in a types.coroutine generator.
        result[0] = yield from coro  # type: ignore[func-returns-value]


def _start_inline_runner(
    result: list[object],
) -> Generator[object, Coroutine[Any, Any, object], None]:
    runner = _inline_runner(result)
    next(runner)  # to its first yield: ready for a coroutine
    return runner


class Cancellable(Protocol):
    """A running handler's cancel handle: ``trio.CancelScope`` or ``asyncio.Task``."""

    def cancel(self) -> object:
        """Cancel the handler."""
        ...


class CallPool(Protocol):
    """Workers that take admitted calls (trio's ``WorkerPool``, or asyncio tasks)."""

    def submit(self, item: AdmittedCall) -> bool:
        """Start ``item`` on a free worker; False when every worker is busy."""
        ...


class AdmittedCall:
    """One admitted call on its way through the queue and a worker."""

    __slots__ = (
        "addr", "args", "call_no", "cancelled", "context", "deadline", "entry", "flags", "key",
        "plan", "reply_wanted", "scope",
    )

    def __init__(
        self,
        addr: Address,
        key: SessionKey,
        call_no: int,
        flags: int,
        plan: CallPlan,
        args: tuple[object, ...],
        deadline: float | None,
        entry: CacheEntry | None = None,
    ) -> None:
        self.addr = addr
        self.key = key
        self.call_no = call_no
        #: The CALL's flags (``callproto.FLAG_*``).
        self.flags = flags
        self.plan = plan
        self.args = args
        self.deadline = deadline
        #: The call's reply-cache entry (None for an idempotent call, which has none).
        self.entry = entry
        self.cancelled = False
        #: False once the client closed its session: run the call, send no reply.
        self.reply_wanted = True
        #: What cancels the running handler (the worker's cancel scope on trio, its task on
        #: asyncio) while it runs, else None.
        self.scope: Cancellable | None = None
        self.context: CallContext | None = None

    def call_context(self) -> CallContext:
        """The handler's view of this call (``rpc.current_call()``), built on first use."""
        if self.context is None:
            plan = self.plan
            self.context = CallContext(
                self.addr, self.key[1], self.call_no, plan.service.name,
                plan.service.version, plan.method.name, self.deadline, self,
            )
        return self.context

    def cancel(self) -> None:
        """Cancel the call: a queued call will not start, a running handler is cancelled."""
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


class Executor:
    """Runs admitted calls and sends their replies through ``send``.

    ``failed`` is the server's counter of failed calls by kind (shared, so the server's
    statistics see one table); ``unacked`` gets ``(address, message id)`` of every reply sent
    (the server removes it when acknowledged), and :attr:`on_done`, once set, is called
    whenever a call ends. ``queue``, if given, queues a reply without sending it (the
    endpoint's ``send_message``: the driver sends after the input being handled); a call run
    inline, which runs while the server handles its CALL, replies through it.
    """

    def __init__(
        self,
        cache: ReplyCache,
        send: Callable[[Address, bytes, float], int | None],
        failed: collections.Counter[str],
        *,
        max_concurrent: int,
        max_queued: int,
        unacked: set[tuple[Address, int]],
        queue: Callable[..., int] | None = None,
    ) -> None:
        self._cache = cache
        self._send = send
        self._queue_reply = queue
        self._failed = failed
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        self._unacked = unacked
        #: Called whenever a call ends. The server sets it when it starts draining (nothing
        #: else needs to know), so serving costs no call per RPC for it.
        self.on_done: Callable[[], None] | None = None
        self._pool: CallPool | None = None
        self._clock: Callable[[], float] = trio.current_time
        self._running: dict[CallId, AdmittedCall] = {}
        #: The call whose handler runs inline right now (it is running, but not in _running:
        #: nothing can look it up meanwhile, so registering it would be wasted work).
        self._inline: AdmittedCall | None = None
        self._inline_result: list[object] = [None]
        self._inline_runner = _start_inline_runner(self._inline_result)
        self._queue: collections.deque[AdmittedCall] = collections.deque()
        self._queued: dict[CallId, AdmittedCall] = {}
        self.completed = 0
        self.handler_seconds = 0.0

    def start(self, nursery: trio.Nursery) -> None:
        """Run workers in ``nursery`` (before the first :meth:`submit`)."""
        self._pool = WorkerPool(nursery, self._run, self._next_queued, self._max_concurrent)
        # The run's clock, read directly: trio.current_time() adds two calls per read.
        self._clock = trio.lowlevel.current_clock().current_time

    @property
    def running(self) -> int:
        """Calls whose handler runs (in a worker or inline)."""
        return len(self._running) + (self._inline is not None)

    @property
    def queued(self) -> int:
        """Calls waiting for a worker."""
        return len(self._queue)

    def full(self) -> bool:
        """True when every worker is busy and the queue is full: refuse new calls."""
        return len(self._running) >= self._max_concurrent and len(self._queue) >= self._max_queued

    def idle(self) -> bool:
        """True when nothing runs or waits."""
        return not self._running and not self._queue and self._inline is None

    def submit(self, call: AdmittedCall, now: float | None = None) -> None:
        """Run ``call`` now if a worker is free, else queue it (check :meth:`full` first).

        ``now``, the time the call arrived if known, saves a clock read. A handler that never
        suspends (``CallPlan.inline``) runs right here, without a hop to a worker, when a
        worker could have taken it at once: it overtakes nothing and the limit holds. That is
        the per-call hot path of most servers, hence in this function: it also counts the call,
        sends the reply and completes the cache entry (what :meth:`_finish` does for a
        worker's call). Its coroutine completes in one step; it cannot be cancelled midway (it
        has no checkpoint), and a deadline that passed while it ran means no reply, as in a
        worker.
        """
        assert self._pool is not None, "start() first"
        if not call.plan.inline or self._queue or len(self._running) >= self._max_concurrent:
            self._to_worker(call)
            return
        started = self._clock() if now is None else now
        self._inline = call
        deadline = call.deadline
        if call.cancelled or (deadline is not None and deadline <= started):
            self._not_started(call, None, started)
            return
        plan, call_no = call.plan, call.call_no
        token = _CURRENT.set(call)  # reset below: this task goes on serving others
        # inline implies a coroutine function (never_suspends checked it); no typing.cast:
        # it is a real function call at run time.
        coro: Coroutine[Any, Any, object] = plan.fn(*call.args)  # type: ignore[assignment]
        reply: bytes
        try:
            out = self._inline_runner.send(coro)
        except BaseException as exc:  # the handler raised: the runner ended with it
            self._inline_runner = _start_inline_runner(self._inline_result)
            if not isinstance(exc, Exception):
                raise
            status, reply = plan.error_reply(call_no, exc)
        else:
            if out is _RETURNED:
                result, self._inline_result[0] = self._inline_result[0], None
                method = plan.method
                try:
                    # encode_result's own first test, without its call: a plain result
                    # (bytes, int, ...) is sent as it is.
                    body = (
                        result if type(result) is method.result_plain
                        else method.encode_result(result)
                    )
                    reply = callproto.encode_ok_reply(call_no, body)
                    status = Status.OK
                except ValidationError:
                    status, reply = plan.result_reply(call_no, result)  # logs and refuses it
            else:  # it suspended after all: it must not go on in this task
                self._inline_runner.close()  # closes the handler's coroutine too
                self._inline_runner = _start_inline_runner(self._inline_result)
                status, reply = plan.error_reply(call_no, RuntimeError("handler suspended inline"))
        finally:
            _CURRENT.reset(token)
        now = self._clock()
        self.handler_seconds += now - started
        if deadline is not None and deadline <= now:
            self._failed["DEADLINE"] += 1
            self._finish(call, None, None, now)
        elif call.cancelled:  # the handler gave up on its call (current_call().cancel())
            # mypy keeps call.cancelled narrowed to False from the check before the run; the
            # handler can set it meanwhile. As for a worker's call: no reply is sent.
            self._failed["CANCELLED"] += 1  # type: ignore[unreachable]
            self._finish(call, None, None, now)
        else:
            self._returned(call, None, status, reply, now)

    def _to_worker(self, call: AdmittedCall) -> None:
        """Hand ``call`` to a free worker, else queue it."""
        assert self._pool is not None
        ident = call.key, call.call_no
        if self._pool.submit(call):
            self._running[ident] = call
        else:
            self._queue.append(call)
            self._queued[ident] = call

    def find(self, ident: CallId) -> AdmittedCall | None:
        """The running or queued call with this identity."""
        return self._running.get(ident) or self._queued.get(ident)

    def calls(self) -> list[AdmittedCall]:
        """Every running and queued call."""
        inline = [] if self._inline is None else [self._inline]
        return [*self._running.values(), *inline, *self._queue]

    async def _run(self, call: AdmittedCall, scope: trio.CancelScope) -> bool:
        """Run one call's handler under the worker's ``scope``; send its reply.

        Returns True when ``scope`` was cancelled (it is then spent). The handler is awaited
        here directly, not through a helper coroutine: this is the per-call hot path.
        """
        deadline = call.deadline
        started = self._clock()
        if call.cancelled or (deadline is not None and deadline <= started):
            self._not_started(call, (call.key, call.call_no), started)
            return False
        call.scope = scope
        if deadline is not None:
            scope.deadline = deadline
        _CURRENT.set(call)  # this worker task serves this call now
        plan, call_no = call.plan, call.call_no
        status, reply, returned = Status.OK, b"", False
        try:
            try:
                result = await plan.fn(*call.args)
            except Exception as exc:
                status, reply = plan.error_reply(call_no, exc)
            else:
                status, reply = plan.result_reply(call_no, result)
            returned = True
        finally:
            # Also runs while trio.Cancelled propagates (the worker's scope absorbs ours).
            call.scope = None
            now = self._clock()
            self.handler_seconds += now - started
            # Only CANCEL, a client restart or the deadline cancel the scope; reading
            # scope.cancel_called costs a clock read, so it is asked only when armed.
            spent = call.cancelled or (deadline is not None and scope.cancel_called)
            if spent:  # nobody wants a reply
                self._failed["DEADLINE" if scope.deadline <= now else "CANCELLED"] += 1
                self._finish(call, (call.key, call_no), None, now)
            elif returned:
                if deadline is not None:  # setting a deadline is not free: only if armed
                    scope.deadline = math.inf
                self._returned(call, (call.key, call_no), status, reply, now)
            else:  # the whole server is being torn down
                del self._running[call.key, call_no]
        return spent

    def _not_started(self, call: AdmittedCall, ident: CallId | None, now: float) -> None:
        """Finish a call that was cancelled or expired before its handler could start."""
        self._failed["CANCELLED" if call.cancelled else "DEADLINE"] += 1
        self._finish(call, ident, None, now)

    def _returned(
        self, call: AdmittedCall, ident: CallId | None, status: Status, reply: bytes, now: float
    ) -> None:
        if status is Status.OK:
            self.completed += 1
        else:
            self._failed[status.name] += 1
        # A oneway call is executed at most once, and nobody waits for a result.
        self._finish(call, ident, None if call.flags & callproto.FLAG_ONEWAY else reply, now)

    def _finish(
        self, call: AdmittedCall, ident: CallId | None, reply: bytes | None, now: float
    ) -> None:
        """End a call: send its ``reply`` (if any; ``now`` is the time) and settle its entry.

        ``ident`` is the call's key in ``_running``; ``None`` for the call running inline.
        """
        if ident is None:
            self._inline = None
        else:
            del self._running[ident]
        message_id = None
        if reply is not None and call.reply_wanted:
            # Sent before the cache entry completes: nothing can arrive in between (events
            # are delivered by the reader task), and the entry then learns its message id
            # in the same step.
            queue = self._queue_reply if ident is None else None
            if queue is None:
                message_id = self._send(call.addr, reply, now)
            else:
                # A call run inline runs while the server handles its CALL: the driver
                # sends what is queued after it.
                try:
                    message_id = queue(call.addr, reply, now=now)
                except SendBufferFull:  # the client does not read its replies: it times out
                    self._failed["REPLY_DROPPED"] += 1
            if message_id is not None:
                self._unacked.add((call.addr, message_id))
        entry = call.entry
        if entry is not None:
            self._cache.complete_entry(entry, reply, message_id)
        elif not call.flags & callproto.FLAG_IDEMPOTENT:
            self._cache.complete(call.key, call.call_no, reply, message_id)
        if self.on_done is not None:
            self.on_done()

    def _next_queued(self) -> AdmittedCall | None:
        """The next queued call (the worker pool's source of work)."""
        if not self._queue:
            return None
        call = self._queue.popleft()
        ident = call.key, call.call_no
        del self._queued[ident]
        self._running[ident] = call
        return call
