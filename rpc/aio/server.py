"""The asyncio server: the trio server's semantics (``rpc.server``) on an asyncio event loop.

::

    async with rpc.aio.Server([CalculatorImpl()], port=7000) as server:
        print("listening on", server.address)
        await server.serve_until_signal()   # SIGINT/SIGTERM: drain, then stop

Handlers are the same ``async def`` methods of the generated handler classes; they run in
asyncio tasks, ``rpc.current_call()`` works in them, a caller's deadline bounds them and a
CANCEL cancels them. Admission, the reply cache, probes and the drain are
:class:`rpc._server_core.ServerCore`, shared with the trio server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import Any

from rpc._execution import Executor
from rpc._server_core import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_QUEUED,
    DEFAULT_SHUTDOWN_GRACE,
    ServerCore,
    ServerStatistics,
    logger,
)
from rpc.aio._execution import AsyncioExecutor
from rpc.calls.reply_cache import ReplyCache
from rpc.calls.service import Handler
from rpc.drivers._asyncio import AsyncioDriver
from rpc.drivers._busy_poll import DEFAULT_BUSY_POLL, check_busy_poll
from rpc.drivers._io import bind_udp_socket
from rpc.errors import InvalidArgument, RpcError
from rpc.transport import events
from rpc.transport.config import TransportConfig

Address = tuple[str, int]


class Server(ServerCore):
    """Serve ``handlers`` over UDP on asyncio; the arguments of :class:`rpc.Server`.

    ``socket`` (a trio simulated socket there) has no asyncio counterpart yet and must be
    None; ``busy_poll`` is checked and accepted (this server waits through the loop).
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
        socket: object | None = None,
        reply_cache: ReplyCache | None = None,
        busy_poll: float = DEFAULT_BUSY_POLL,
    ) -> None:
        check_busy_poll(busy_poll)
        if socket is not None:
            raise InvalidArgument("rpc.aio.Server takes no socket= (it binds a UDP socket)")
        super().__init__(
            handlers,
            max_concurrent=max_concurrent,
            max_queued=max_queued,
            config=config,
            reply_cache=reply_cache,
        )
        self._host, self._port = host, port
        self._aio_driver: AsyncioDriver[events.TransportEvent] | None = None
        self._drained = asyncio.Event()
        self._stopped = asyncio.Event()

    def _make_executor(self, *args: Any, **kwargs: Any) -> Executor:
        return AsyncioExecutor(*args, **kwargs)

    def _on_drained(self) -> None:
        self._drained.set()

    @property
    def address(self) -> Address:
        """The bound ``(host, port)``; valid once serving has started."""
        if self._aio_driver is None:
            raise RpcError("the server is not serving yet")
        return self._aio_driver.address

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> Address:
        """Bind the socket and start serving (in the running loop); returns the address."""
        if self._aio_driver is not None:
            raise RpcError("the server is serving already; a Server serves once")
        try:
            sock = bind_udp_socket((self._host, self._port))
        except OSError as exc:
            raise RpcError(f"cannot bind {self._host}:{self._port}: {exc}") from None
        executor = self._calls
        assert isinstance(executor, AsyncioExecutor)
        executor.start()
        driver: AsyncioDriver[events.TransportEvent] = await AsyncioDriver.open(
            self._endpoint, self._handle_event, sock
        )
        self._aio_driver = driver
        self._driver = driver
        return driver.address

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if exc_info[0] is None:
            await self.shutdown()
        else:
            await self._stop(graceful=False)

    async def shutdown(self, grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
        """Refuse new calls, finish running ones, deliver their replies, then stop.

        Handlers still running after ``grace`` seconds are cancelled; every client session
        ends with a CLOSE, drained where nothing the client awaits ran.
        """
        if self._stopped.is_set() or self._aio_driver is None:
            return
        self._begin_drain()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained.wait(), grace)
        self._cancel_leftovers(grace)
        await self._stop(graceful=True)

    async def _stop(self, *, graceful: bool) -> None:
        if self._stopped.is_set() or self._aio_driver is None:
            return
        self._stopped.set()
        if graceful:  # a crash sends nothing, as a real crash would
            self._close_sessions(self._aio_driver.now())
        else:
            self._aio_driver.abort()
        await self._aio_driver.aclose()
        assert isinstance(self._calls, AsyncioExecutor)
        self._calls.stop()

    async def wait_stopped(self) -> None:
        """Wait until the server has stopped (after :meth:`shutdown` by another task)."""
        await self._stopped.wait()

    async def serve_until_signal(
        self,
        *,
        grace: float = DEFAULT_SHUTDOWN_GRACE,
        signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
    ) -> None:
        """Serve until one of ``signals`` arrives, then :meth:`shutdown` within ``grace``; a
        second signal stops at once. Starts serving unless ``async with`` already did."""
        if self._aio_driver is None:
            await self.start()
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[int] = asyncio.Queue()
        for signum in signals:
            loop.add_signal_handler(signum, arrived.put_nowait, signum)
        try:
            stopped = asyncio.ensure_future(self._stopped.wait())
            first = asyncio.ensure_future(arrived.get())
            await asyncio.wait({stopped, first}, return_when=asyncio.FIRST_COMPLETED)
            if first.done():
                logger.info("%s received: shutting down within %.1f s (again to stop at once)",
                            signal.Signals(first.result()).name, grace)
                drain = asyncio.ensure_future(self.shutdown(grace))
                again = asyncio.ensure_future(arrived.get())
                await asyncio.wait({drain, again}, return_when=asyncio.FIRST_COMPLETED)
                if not drain.done():
                    logger.warning("signal received again: stopping at once")
                    drain.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await drain
                    await self.shutdown(0)
                again.cancel()
            else:
                first.cancel()
            stopped.cancel()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)


__all__ = ["Server", "ServerStatistics"]
