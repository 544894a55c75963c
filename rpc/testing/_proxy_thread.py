"""The chaos proxy in a thread of its own, for tests that do not run on trio (asyncio, uvloop,
blocking code): ``with ChaosProxyThread(server_address, faults, faults) as proxy:`` and send to
``proxy.address``. The faults are applied to real UDP traffic in real time."""

from __future__ import annotations

import queue
import threading
from types import TracebackType

import trio

from rpc.testing._faults import CLEAN, LinkFaults
from rpc.testing.chaos_proxy import ChaosProxy, ProxyStatistics

Address = tuple[str, int]

#: Longest the proxy thread may take to start or to stop (seconds).
THREAD_TIMEOUT = 30.0


class ChaosProxyThread:
    """A :class:`ChaosProxy` running on trio in a background thread; a plain context manager."""

    def __init__(
        self,
        target: Address,
        to_server: LinkFaults = CLEAN,
        to_client: LinkFaults = CLEAN,
        seed: int = 0,
    ) -> None:
        self._proxy = ChaosProxy(target, to_server, to_client, seed)
        self._ready: queue.Queue[tuple[trio.lowlevel.TrioToken, trio.Event] | BaseException] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._main, name="chaos-proxy", daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._done: trio.Event | None = None

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # a failure to start reaches the thread that waits
            self._ready.put(exc)

    async def _serve(self) -> None:
        done = trio.Event()
        async with self._proxy:
            self._ready.put((trio.lowlevel.current_trio_token(), done))
            await done.wait()

    @property
    def address(self) -> Address:
        """Where clients send."""
        return self._proxy.address

    def statistics(self) -> ProxyStatistics:
        """What the proxy did in each direction (a snapshot; from any thread but the proxy's)."""
        if self._token is None:
            return self._proxy.statistics()
        return trio.from_thread.run_sync(self._proxy.statistics, trio_token=self._token)

    def set_faults(
        self, to_server: LinkFaults | None = None, to_client: LinkFaults | None = None
    ) -> None:
        """Change the faults of one or both directions from now on."""
        if self._token is None:
            self._proxy.set_faults(to_server, to_client)
        else:
            trio.from_thread.run_sync(
                self._proxy.set_faults, to_server, to_client, trio_token=self._token
            )

    def __enter__(self) -> ChaosProxyThread:
        self._thread.start()
        started = self._ready.get(timeout=THREAD_TIMEOUT)
        if isinstance(started, BaseException):
            raise started
        self._token, self._done = started
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None and self._done is not None:
            trio.from_thread.run_sync(self._done.set, trio_token=self._token)
        self._thread.join(THREAD_TIMEOUT)
        self._token = None  # statistics() now reads the stopped proxy directly


__all__ = ["ChaosProxyThread"]
