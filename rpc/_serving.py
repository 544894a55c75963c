"""Serving until a signal, then draining: ``Server.serve_until_signal`` and ``rpc.run_server``.

The first signal (SIGINT or SIGTERM by default) starts :meth:`Server.shutdown`: new calls are
refused with ``ShuttingDown``, running ones get up to ``grace`` seconds to finish and their
replies are delivered, then every client's session ends with a CLOSE, so clients learn at once.
A second signal during the drain stops at once: the running handlers are cancelled (their
callers learn from the CLOSE). Signals arrive through ``trio.open_signal_receiver``, so while
the server serves, Ctrl-C raises no ``KeyboardInterrupt`` in the middle of a handler and SIGTERM
(``docker stop``, systemd, Kubernetes) no longer kills the process without telling its clients.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import trio

from rpc.calls.service import Handler
from rpc.drivers._nursery import BackgroundNursery
from rpc.errors import InvalidArgument, RpcError
from rpc.server import DEFAULT_SHUTDOWN_GRACE, Address, Server

logger = logging.getLogger("rpc.server")


async def serve_until_signal(
    server: Server,
    serving: bool,
    stopped: trio.Event,
    *,
    grace: float,
    signals: Sequence[int],
    task_status: Any,
) -> None:
    """:meth:`Server.serve_until_signal`: ``serving`` tells whether ``server`` already serves
    (``async with server:``); ``stopped`` is set once it has stopped."""
    if not grace >= 0:  # also refuses NaN
        raise InvalidArgument(f"grace must be >= 0 seconds, not {grace!r}")
    if not signals:
        raise InvalidArgument("serve_until_signal needs at least one signal")
    if threading.current_thread() is not threading.main_thread():
        raise RpcError("serve_until_signal must run in the main thread: only it gets signals")
    if stopped.is_set():
        raise RpcError("the server has stopped already; a Server serves once")
    # The signals are caught before serving starts, so none is missed once the address is out.
    with trio.open_signal_receiver(*signals) as received:
        async with BackgroundNursery() as nursery:
            if not serving:
                await nursery.start(server.serve)
            task_status.started(server.address)
            signum = await _first_signal(received, stopped)
            if signum is not None:
                await _drain(server, received, signum, grace)


async def _first_signal(received: AsyncIterator[int], stopped: trio.Event) -> int | None:
    """The first signal to arrive, or None if the server stops first (another task's
    :meth:`Server.shutdown`)."""
    arrived: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_when_set, stopped, nursery.cancel_scope)
        arrived.append(await anext(received))
        nursery.cancel_scope.cancel()
    return arrived[0] if arrived else None


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _drain(
    server: Server, received: AsyncIterator[int], signum: int, grace: float
) -> None:
    """Shut ``server`` down within ``grace``, or at once if another signal arrives."""
    logger.info("%s received: shutting down within %.1f s (again to stop at once)",
                _name(signum), grace)
    drain = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        # Listens until the end, so that a repeated signal is consumed, not redelivered.
        nursery.start_soon(_stop_at_once_on_signal, received, drain)
        with drain:
            await server.shutdown(grace)
        if drain.cancelled_caught:
            await server.shutdown(0)  # cancels the handlers still running
        nursery.cancel_scope.cancel()


async def _stop_at_once_on_signal(received: AsyncIterator[int], drain: trio.CancelScope) -> None:
    async for signum in received:
        if drain.cancel_called:
            logger.info("%s received: already stopping", _name(signum))
        else:
            logger.warning("%s received again: stopping at once, cancelling running calls",
                           _name(signum))
            drain.cancel()


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def run_server(
    handlers: Sequence[Handler],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    grace: float = DEFAULT_SHUTDOWN_GRACE,
    ready: Callable[[Address], object] | None = None,
    **server_options: Any,
) -> None:
    """Serve ``handlers`` until SIGINT or SIGTERM, then drain within ``grace``; blocks.

    The one-liner of a server program: ``trio.run`` s a :class:`Server` (``server_options``
    are its other keyword arguments: ``config``, ``max_concurrent``...) and its
    :meth:`~Server.serve_until_signal`. ``ready(address)``, if given, is called with the bound
    ``(host, port)`` once the server serves and the signals are caught (to print "listening
    on ...", say). Returns once the server has stopped. Call it from the main thread.
    """
    trio.run(_run_server, handlers, host, port, grace, ready, server_options)


async def _run_server(
    handlers: Sequence[Handler],
    host: str,
    port: int,
    grace: float,
    ready: Callable[[Address], object] | None,
    server_options: dict[str, Any],
) -> None:
    server = Server(handlers, host=host, port=port, **server_options)
    async with BackgroundNursery() as nursery:
        address = await nursery.start(functools.partial(server.serve_until_signal, grace=grace))
        if ready is not None:
            ready(address)


__all__ = ["run_server", "serve_until_signal"]
