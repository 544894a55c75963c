"""What the scenarios share: concurrent call drivers, at-most-once checks, a tapping socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

import rpc
from rpc.testing import LinkFaults, SimSocket
from rpc.testing.chaos_proxy import ChaosProxy
from rpc.transport.config import TransportConfig
from rpc.transport.wire import FLAG_DATA, decode_datagram_untrusted
from tests.acceptance.service import payload, sha256

Address = tuple[str, int]


async def run_concurrently(
    items: Iterable[int], call: Callable[[int], Awaitable[None]], *, tasks: int
) -> None:
    """Run ``call(item)`` for every item, at most ``tasks`` at a time."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # one shared iterator: each item is taken by one worker
            await call(item)

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)


@dataclass
class Ledger:
    """What each call returned or raised, by call id."""

    returned: set[int] = field(default_factory=set)
    failed: dict[int, rpc.RpcError] = field(default_factory=dict)

    def check_at_most_once(self, executions: dict[int, int]) -> None:
        """Every returned call ran exactly once; a call that failed without running did not run;
        nothing ran that was never called; nothing ran twice."""
        assert all(count <= 1 for count in executions.values())
        assert all(executions.get(i, 0) == 1 for i in self.returned)
        not_run = (rpc.CallOutcome.NOT_DELIVERED, rpc.CallOutcome.NOT_EXECUTED)
        assert all(
            executions.get(i, 0) == 0 for i, exc in self.failed.items() if exc.outcome in not_run
        )
        assert set(executions) <= self.returned | set(self.failed)


async def apply_checked(
    chaos_client: Any, ledger: Ledger, call_id: int, *, size: int = 16, timeout: float | None = None
) -> None:
    """Call ``apply`` and check the reply belongs to this call and is intact."""
    data = payload(call_id, size)
    try:
        echo = await chaos_client.apply(call_id, data, timeout=timeout)
    except rpc.RpcError as exc:
        ledger.failed[call_id] = exc
        return
    assert echo.id == call_id
    assert echo.data == data
    assert echo.sha256 == sha256(data)
    ledger.returned.add(call_id)


def is_last_fragment(data: bytes) -> bool:
    """True for a datagram carrying the last fragment of a message spanning several."""
    try:
        dgram = decode_datagram_untrusted(data)
    except rpc.BadDatagram:
        return False
    return (
        bool(dgram.flags & FLAG_DATA)
        and dgram.offset > 0
        and dgram.offset + len(dgram.fragment) == dgram.total_length
    )


class TapSocket:
    """Wraps a :class:`SimSocket`: records what it sends, can drop chosen datagrams in either
    direction (as if the link lost them) and can send old datagrams again from its address."""

    def __init__(
        self,
        inner: SimSocket,
        *,
        drop_outgoing: Callable[[bytes], bool] | None = None,
        drop_incoming: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.inner = inner
        self.sent: list[tuple[bytes, Address]] = []
        self.dropped_outgoing = 0
        self.dropped_incoming = 0
        self._drop_outgoing = drop_outgoing
        self._drop_incoming = drop_incoming

    def getsockname(self) -> Address:
        return self.inner.getsockname()

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        while True:
            data, src = await self.inner.recvfrom(bufsize)
            if self._drop_incoming is not None and self._drop_incoming(data):
                self.dropped_incoming += 1
                continue
            return data, src

    async def sendto(self, data: bytes, addr: Address) -> None:
        await trio.lowlevel.checkpoint()
        self.try_sendto(data, addr)

    def try_sendto(self, data: bytes, addr: Address) -> bool:
        self.sent.append((bytes(data), addr))
        if self._drop_outgoing is not None and self._drop_outgoing(data):
            self.dropped_outgoing += 1
            return True
        return self.inner.try_sendto(data, addr)

    def inject(self, data: bytes, addr: Address) -> None:
        """Send ``data`` to ``addr`` from this socket's address, bypassing the filters."""
        self.inner.try_sendto(data, addr)

    def close(self) -> None:
        self.inner.close()


#: Generous bound, in real seconds, of each real-socket scenario: a hang fails the test.
REALNET_BOUND = 30.0


@contextlib.asynccontextmanager
async def proxied_service(
    handlers: Sequence[rpc.Handler],
    *,
    to_server: LinkFaults,
    to_client: LinkFaults,
    seed: int,
    config: TransportConfig | None = None,
) -> AsyncIterator[tuple[rpc.Server, ChaosProxy, rpc.Client]]:
    """A server on 127.0.0.1, a chaos proxy in front of it and a client talking through it."""
    async with rpc.Server(handlers, config=config) as server, ChaosProxy(
        server.address, to_server=to_server, to_client=to_client, seed=seed
    ) as proxy, rpc.connect(*proxy.address, config=config) as client:
        yield server, proxy, client


async def eventually(condition: Callable[[], bool], *, limit: float = 5.0) -> None:
    """Wait (polling, bounded) until ``condition()`` holds: datagrams still in a kernel buffer
    on real sockets are counted a moment later."""
    with trio.fail_after(limit):
        while not condition():
            await trio.sleep(0.01)
