"""The trio server: serves handlers for several services (and versions) on one UDP socket.

::

    server = rpc.Server([CalculatorImpl()], port=7000)
    async with server:              # or: await nursery.start(server.serve)
        print("listening on", server.address)
        await trio.sleep_forever()

Each admitted call runs (``rpc._execution``) in a worker task of the server's nursery, inside a
cancel scope whose deadline is the caller's remaining budget. At most ``max_concurrent``
handlers run at once; up to ``max_queued`` more calls wait in a FIFO; beyond that calls are
refused with ``ServerBusy``. Non-idempotent calls pass the at-most-once
:class:`~rpc.calls.reply_cache.ReplyCache`.
"""
from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

import trio

from rpc._execution import Executor
from rpc._server_core import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_QUEUED,
    DEFAULT_SHUTDOWN_GRACE,
    ServerCore,
    ServerStatistics,
)
from rpc.calls.reply_cache import ReplyCache
from rpc.calls.service import Handler
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc.drivers._io import DatagramSocket
from rpc.drivers._nursery import BackgroundNursery
from rpc.drivers._trio import TrioDriver, open_udp_socket
from rpc.errors import RpcError
from rpc.transport import events
from rpc.transport.config import TransportConfig

Address = tuple[str, int]


class Server(ServerCore):
    """Serve ``handlers`` over UDP; see the module docstring.

    ``max_concurrent`` bounds the handlers running at once and ``max_queued`` the calls waiting
    for a slot; ``socket`` replaces the UDP socket (e.g. a ``rpc.testing`` simulated socket);
    ``reply_cache`` replaces the default-sized at-most-once cache; ``busy_poll`` is the longest
    the server, idle between the calls of a sequential client, polls its socket before it
    sleeps, while recent calls came that fast (seconds; 0 never polls).
    """

    def __init__(
        self,
        handlers: Sequence[Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        max_queued: int = DEFAULT_MAX_QUEUED,
        config: TransportConfig | None = None,
        socket: DatagramSocket | None = None,
        reply_cache: ReplyCache | None = None,
        busy_poll: float = DEFAULT_BUSY_POLL,
    ) -> None:
        self._busy_poll = check_busy_poll(busy_poll)
        super().__init__(
            handlers,
            max_concurrent=max_concurrent,
            max_queued=max_queued,
            config=config,
            reply_cache=reply_cache,
        )
        self._host, self._port = host, port
        self._socket: DatagramSocket | None = socket
        self._drained = trio.Event()
        self._stopped = trio.Event()
        #: Set when serve() has ended: its sessions are closed and its socket too.
        self._finished = trio.Event()
        self._serving = False

    def _make_executor(self, *args: Any, **kwargs: Any) -> Executor:
        return Executor(*args, **kwargs)

    def _on_drained(self) -> None:
        self._drained.set()

    @property
    def address(self) -> Address:
        """The bound ``(host, port)``; valid once serving has started."""
        if self._socket is None:
            raise RpcError("the server is not serving yet")
        name = self._socket.getsockname()
        return (str(name[0]), int(name[1]))

    # -- life cycle -------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`shutdown` completes; ``task_status.started(address)``."""
        if self._socket is None:
            self._socket = await open_udp_socket(self._host, self._port)
        socket = self._socket
        self._serving = True
        try:
            async with BackgroundNursery() as nursery:
                self._calls.start(nursery)
                # respond_first: a reply goes out before the ACK its CALL carried is applied.
                driver: TrioDriver[events.TransportEvent] = TrioDriver(
                    self._endpoint,
                    socket,
                    self._handle_event,
                    respond_first=True,
                    busy_poll=self._busy_poll,
                )
                self._driver = driver
                await nursery.start(driver.run)
                task_status.started(self.address)
                await self._stopped.wait()
                # A graceful stop ends every client session with a CLOSE (best effort), so
                # clients learn at once instead of after their liveness timeout. A crash
                # (cancellation) never gets here and sends nothing, as a real crash would.
                if self._shutting_down:
                    self._close_sessions(trio.current_time())
                await driver.aclose()
                nursery.cancel_scope.cancel()
        finally:
            socket.close()
            self._stopped.set()
            self._finished.set()

    async def __aenter__(self) -> Server:
        self._outer = BackgroundNursery()
        nursery = await self._outer.__aenter__()
        try:
            await nursery.start(self.serve)
        except BaseException as exc:
            await self._outer.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if exc_info[0] is None:
            await self.shutdown()
        else:
            self._stopped.set()
        return await self._outer.__aexit__(*exc_info)

    async def shutdown(self, grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
        """Refuse new calls, finish running ones, deliver their replies, then stop.

        Handlers still running after ``grace`` seconds are cancelled (their callers get no
        reply and see a deadline or ``PeerUnreachable``); replies still unacknowledged then
        are abandoned.
        """
        if self._stopped.is_set():
            return
        self._begin_drain()
        with trio.move_on_after(grace):
            await self._drained.wait()
        self._cancel_leftovers(grace)
        self._stopped.set()
        if self._serving:
            # Returns once the sessions are closed (their CLOSEs sent) and the socket too: a
            # caller that exits right after must not cut the CLOSEs off.
            await self._finished.wait()

    async def serve_until_signal(
        self,
        *,
        grace: float = DEFAULT_SHUTDOWN_GRACE,
        signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until one of ``signals`` arrives, then :meth:`shutdown` within ``grace``.

        Starts serving, unless ``async with server:`` already did; ``task_status.started(
        address)`` once serving with the signals caught. A second signal during the drain stops
        at once, cancelling the running handlers. Returns once the server has stopped (also
        when another task shuts it down). Main thread only. See ``rpc._serving``.
        """
        from rpc import _serving  # here, not at the top: rpc._serving imports this module

        await _serving.serve_until_signal(
            self, self._driver is not None, self._stopped,
            grace=grace, signals=signals, task_status=task_status,
        )

    # -- transport events -------------------------------------------------------------------

__all__ = ["DEFAULT_SHUTDOWN_GRACE", "Server", "ServerStatistics"]
