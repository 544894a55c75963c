"""The steps of an async call that do not depend on the event loop: checks, the handshake,
retries under a policy within one deadline, counting, and turning the reply into a result.

:class:`AsyncCallFlow` is the base of the trio client (:mod:`rpc.client`) and the asyncio one
(:mod:`rpc.aio`): each supplies its clock, its sleep and its round trip (how a call waits for
its reply on that loop); the rules live here once.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rpc.calls import callproto
from rpc.calls._call_table import CallTable, ClientStatistics, PendingCall
from rpc.calls.retry import (
    Retries,
    RetryPolicy,
    check_retry,
    check_timeout,
    default_policy,
    not_sent,
)
from rpc.calls.service import MethodSpec, ServiceSpec
from rpc.errors import CallOutcome, RpcError
from rpc.transport.endpoint import Endpoint

R = TypeVar("R")
Address = tuple[str, int]


class AsyncCallFlow(ABC):
    """What every async client does around a round trip; implements ``rpc.AsyncCaller``."""

    #: The loop's clock (seconds; the endpoint runs on the same clock).
    _now: Callable[[], float]
    #: The loop's sleep.
    _sleep: Callable[[float], Awaitable[Any]]

    def __init__(self, endpoint: Endpoint, server: Address, retry: RetryPolicy | None) -> None:
        self._endpoint = endpoint
        self._server = server
        #: The calls' default retry policy (``NO_RETRY`` unless the client was given one).
        self._retry = default_policy(retry)
        self._table = CallTable()

    @property
    def server_address(self) -> Address:
        """The server this client calls."""
        return self._server

    async def call(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        args: tuple[object, ...],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> R:
        """Make one call (used by generated clients); see ``rpc.AsyncCaller``.

        ``timeout`` (seconds, ``None`` for none) is the one deadline of the whole call: the
        handshake, every attempt and every backoff. ``retry`` overrides the client's default
        policy for this call (``rpc.NO_RETRY`` turns retrying off). A ``timeout`` that is not
        a number raises ``TypeError`` and NaN ``ValueError``; one of 0 or less fails at once
        with ``DeadlineExceeded`` (``NOT_DELIVERED``), sending nothing.
        """
        if timeout is not None and not (type(timeout) is float and 0.0 < timeout < math.inf):
            timeout = check_timeout(service.name, method.name, timeout)
        policy = self._retry if retry is None else check_retry(service.name, method.name, retry)
        table = self._table
        table.started += 1
        try:
            if timeout is not None and timeout <= 0:
                raise not_sent(timeout)
            wire_args = table.encode_args(service, method, args)
            deadline = None if timeout is None else self._now() + timeout
            if policy.attempts == 1:
                result: R = await self._attempt(service, method, wire_args, deadline, timeout)
            else:
                result = await self._call_with_retries(
                    service, method, wire_args, deadline, timeout, policy
                )
        except RpcError as exc:
            table.failed[type(exc).__name__] += 1
            if method.idempotent:
                exc.idempotent = True
            raise
        table.succeeded += 1
        return result

    async def _attempt(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        wire_args: object,
        deadline: float | None,
        timeout: float | None,
    ) -> R:
        """One attempt of a call: the handshake if needed, the round trip, the result."""
        table = self._table
        if table.needs_handshake(method):
            await self._handshake(deadline)
            if deadline is not None:
                timeout = deadline - self._now()
                if timeout <= 0:  # the handshake took all the time: send nothing
                    raise not_sent(timeout)
        pending, payload = table.build_call(service, method, wire_args, timeout)
        reply = await self._round_trip(pending, payload, deadline, timeout)
        if reply is not None and reply[0] is callproto.Status.OK:
            result: R = reply[1]  # type: ignore[assignment]  # checked just below
            if type(result) is not method.result_plain:  # else valid as it is (bytes)
                result = table.finish(service, method, pending, reply)
        else:
            result = table.finish(service, method, pending, reply)
        return result

    async def _call_with_retries(
        self,
        service: ServiceSpec,
        method: MethodSpec[R],
        wire_args: object,
        deadline: float | None,
        timeout: float | None,
        policy: RetryPolicy,
    ) -> R:
        """Attempts under ``policy`` until one succeeds, all are made, or the deadline nears.

        Each attempt is a new call (a new call number) with the time that remains; the backoff
        between attempts never passes the deadline (when it would, the last error is raised
        at once). The error raised carries the outcome of all attempts together.
        """
        retries = Retries(policy, method.idempotent)
        while True:
            try:
                return await self._attempt(service, method, wire_args, deadline, timeout)
            except RpcError as exc:
                delay = retries.next_delay(exc, self._now(), deadline)
                if delay is None:
                    raise
            await self._sleep(delay)
            self._table.retries += 1
            if deadline is not None:
                timeout = deadline - self._now()

    async def ping(self, *, timeout: float | None = None) -> float:
        """Call the server's null procedure; returns the round-trip time in seconds."""
        start = self._now()
        pending, payload = self._table.build_ping()
        deadline = None if timeout is None else start + timeout
        await self._round_trip(pending, payload, deadline, timeout)
        return self._now() - start

    async def _handshake(self, deadline: float | None) -> None:
        """Ping to learn the server's epoch before the first cached call.

        Each call that needs it sends its own ping, even when others are under way: under
        loss, parallel pings are redundancy (sharing one ping made every caller wait for its
        retransmission; see docs/rpc-layer.md §2.5).
        """
        pending, payload = self._table.build_ping()
        try:
            await self._round_trip(pending, payload, deadline, None)
        except RpcError as exc:
            exc.outcome = CallOutcome.NOT_DELIVERED  # the call itself was never sent
            raise

    @abstractmethod
    async def _round_trip(
        self, pending: PendingCall, payload: bytes, deadline: float | None, timeout: float | None
    ) -> tuple[callproto.Status, object] | None:
        """Send ``payload`` and wait for the call's result: its reply, or None for an
        acknowledged oneway call; raises the error that ended it (``DeadlineExceeded`` at
        ``deadline``, on the loop's clock)."""

    @abstractmethod
    def _send(self, payload: bytes, *, keep_liveness_clock: bool = False) -> int:
        """Queue ``payload`` for the server and send what can go; returns its message id."""

    def _abandon(self, pending: PendingCall) -> None:
        """The caller stopped waiting: tell the server, best effort, if it should know."""
        cancel = self._table.abandon(pending)
        if cancel is not None:
            with contextlib.suppress(RpcError):  # best effort: the server may not hear of it
                self._send(cancel)

    def _probe_tick(self) -> None:
        """One tick of the probe timer: ask the server after the calls delivered long ago
        (``CallTable.calls_to_probe``). A live server acknowledges the probe (or re-sends a
        lost reply); a dead one leaves it unacknowledged, and the transport declares it
        unreachable ``peer_timeout`` after its last acknowledgement, failing every call."""
        due = self._table.calls_to_probe()
        if due:
            self._table.probes += 1
            with contextlib.suppress(RpcError):  # buffer full or closed: the calls time out
                self._send(callproto.encode_probe(due), keep_liveness_clock=True)

    def close(self) -> None:
        """Fail outstanding calls with ``ClientClosed`` and refuse new ones."""
        self._table.close()

    def statistics(self) -> ClientStatistics:
        """A snapshot of this client's counters."""
        return self._table.statistics(self._endpoint.statistics())


__all__ = ["AsyncCallFlow"]
