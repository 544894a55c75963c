"""A nursery for public context managers whose body errors come out unwrapped.

Trio's nurseries are strict: an exception leaving the ``async with`` body, or a background
task, arrives wrapped in an ``ExceptionGroup``. The public API promises that only
``rpc.RpcError`` (and trio's ``Cancelled``, ``KeyboardInterrupt``...) escape, and that the
user's own exceptions raised inside ``async with rpc.connect(...)`` come out as themselves. So
:class:`BackgroundNursery` unwraps a group that holds a single real error, as trio's guide on
context managers with background tasks recommends. A group of several real errors is a
genuine multi-error (a library bug plus a body error, say) and is passed on untouched.
"""

from __future__ import annotations

from types import TracebackType

import trio


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found


def sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception ``group`` stands for, or None when it holds several real errors.

    ``Cancelled`` leaves do not count when there is a real error beside them: trio delivers
    the cancellation again at the caller's next checkpoint, so dropping it loses nothing.
    """
    leaves = _leaves(group)
    real = [exc for exc in leaves if not isinstance(exc, trio.Cancelled)]
    if len(real) > 1:
        return None
    return real[0] if real else leaves[0]


def _raise_keeping_context(exc: BaseException) -> None:
    # ``raise`` inside an ``except`` block would chain the group as ``__context__``; the
    # exception keeps the context it had instead (the group is only trio's wrapping).
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


class BackgroundNursery:
    """``trio.open_nursery()`` for a context manager's background tasks, unwrapping errors.

    When the only error is the exception that left the body, ``__aexit__`` returns False so
    Python re-raises that very object with its own traceback and context.
    """

    def __init__(self) -> None:
        self._manager = trio.open_nursery()

    async def __aenter__(self) -> trio.Nursery:
        return await self._manager.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            return bool(await self._manager.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            sole = sole_error(group)
            if sole is None:
                raise
            if sole is exc:
                return False
            _raise_keeping_context(sole)
            raise  # unreachable: _raise_keeping_context always raises


__all__ = ["BackgroundNursery", "sole_error"]
