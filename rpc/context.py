"""Per-call context for handlers, and the way to run blocking code from a handler.

Inside a handler, :func:`current_call` returns the :class:`CallContext` of the call being
served: who called, when its deadline passes, and a way to give up on it. The server runs each
handler inside a trio cancel scope that is cancelled when the call's deadline passes, when the
client sends a ``CANCEL`` (or restarts), or when :meth:`CallContext.cancel` is called.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable
from typing import Protocol, TypeVar

import trio

T = TypeVar("T")


class _CallHandle(Protocol):
    """The server's record of a running call, as far as its context needs it."""

    cancelled: bool

    def cancel(self) -> None:
        """Cancel the call if its handler still runs."""


@dataclasses.dataclass(eq=False)
class CallContext:
    """What a handler may know about the call it is serving."""

    #: The client's address.
    peer: tuple[str, int]
    #: The client's endpoint epoch (random per client instance).
    client_epoch: int
    #: The call's number within that client session.
    call_number: int
    service: str
    version: int
    method: str
    #: ``trio.current_time()`` value when the caller stops waiting; ``None``: no deadline.
    deadline: float | None
    _handle: _CallHandle = dataclasses.field(repr=False)

    def remaining(self) -> float | None:
        """Seconds until the deadline (negative once passed), or ``None`` without one."""
        if self.deadline is None:
            return None
        return self.deadline - trio.current_time()

    def cancel(self) -> None:
        """Give up on this call: the handler is cancelled and no reply is sent.

        Has no effect once the handler has returned.
        """
        self._handle.cancel()

    @property
    def cancelled(self) -> bool:
        """True once the call has been cancelled (client CANCEL, restart, :meth:`cancel`)."""
        return self._handle.cancelled


class _ContextSource(Protocol):
    """The server's record of a call, which builds its :class:`CallContext` when asked."""

    def call_context(self) -> CallContext:
        """The call's context (built on first use: most handlers never ask)."""
        ...


#: The call the current handler serves. ``rpc._execution`` binds it directly (``set`` in a
#: worker task, ``set``/``reset`` around a handler run inline): wrapper functions would add two
#: calls to every RPC.
_CURRENT: contextvars.ContextVar[_ContextSource | None] = contextvars.ContextVar(
    "rpc_current_call", default=None
)


def current_call() -> CallContext | None:
    """The context of the call the calling handler task serves, or ``None`` outside one."""
    source = _CURRENT.get()
    return None if source is None else source.call_context()


async def run_sync_in_thread(
    fn: Callable[..., T], *args: object, abandon_on_cancel: bool = False
) -> T:
    """Run blocking ``fn(*args)`` in a worker thread so the server keeps serving.

    Cancellation semantics (a thread cannot be interrupted):

    * ``abandon_on_cancel=False`` (default): when the call is cancelled (deadline, client
      cancel, shutdown), the handler waits for ``fn`` to return and is then cancelled; ``fn``'s
      result is discarded. Use this when ``fn`` must not outlive the call.
    * ``abandon_on_cancel=True``: the handler is cancelled at once and the thread is left to
      finish on its own; its result or exception is discarded. Use this for reads whose late
      completion is harmless.

    Exceptions from ``fn`` propagate to the handler unchanged (an undeclared one reaches the
    client as ``RemoteError``). Threads come from trio's default limiter (40 at once); pass
    long-blocking work through your own ``trio.CapacityLimiter`` if you need another bound.
    """
    return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=abandon_on_cancel)
