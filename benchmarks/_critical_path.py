"""Run a benchmark script so that callgrind counts only its critical path.

    valgrind --tool=callgrind --collect-atstart=no python _critical_path.py TOGGLE.so SCRIPT ARGS...

Used by ``bench_instructions.py --critical-path``. The critical path of a sequential call is
what the peer waits for: from the moment this process has input (a wake-up with a datagram
ready, or a datagram read) until it sends the next datagram. What a process does after a
send and before its next wait (re-arming timers, bookkeeping, the event loop going back to
sleep) overlaps the other side's work and is left out. Collection is switched with
callgrind's ``CALLGRIND_TOGGLE_COLLECT`` client request, from a one-line C function in
``TOGGLE.so`` (built by the benchmark with the valgrind headers).

Hooks, installed before the script runs: ``socket.socket`` ``recv``/``recvfrom`` (start after a
datagram is read) and ``send``/``sendto`` (stop before sending), and ``select.epoll`` /
``select.poll`` (start when a wait returns with input, which takes in the event loop's wake-up).
Each hook adds a Python call per socket operation, the same for every system measured.
"""

from __future__ import annotations

import ctypes
import runpy
import select
import socket
import sys
from collections.abc import Callable
from typing import Any


class _Collector:
    """Tracks whether callgrind collects, and flips it through the client request."""

    def __init__(self, toggle: Callable[[], None]) -> None:
        self._toggle = toggle
        self.on = False

    def start(self) -> None:
        if not self.on:
            self.on = True
            self._toggle()

    def stop(self) -> None:
        if self.on:
            self.on = False
            self._toggle()


def _install(collector: _Collector) -> None:
    start, stop = collector.start, collector.stop
    sendto, send = socket.socket.sendto, socket.socket.send
    recvfrom, recv = socket.socket.recvfrom, socket.socket.recv

    def hooked_sendto(self: socket.socket, *args: Any) -> int:
        stop()
        return sendto(self, *args)

    def hooked_send(self: socket.socket, *args: Any) -> int:
        stop()
        return send(self, *args)

    def hooked_recvfrom(self: socket.socket, *args: Any) -> Any:
        result = recvfrom(self, *args)
        start()
        return result

    def hooked_recv(self: socket.socket, *args: Any) -> Any:
        result = recv(self, *args)
        start()
        return result

    socket.socket.sendto = hooked_sendto  # type: ignore[method-assign,assignment]
    socket.socket.send = hooked_send  # type: ignore[method-assign,assignment]
    socket.socket.recvfrom = hooked_recvfrom  # type: ignore[method-assign,assignment]
    socket.socket.recv = hooked_recv  # type: ignore[method-assign,assignment]

    epoll, poll = select.epoll, select.poll

    class HookedEpoll:
        """select.epoll whose ``poll`` starts collection when it returns input."""

        def __init__(self, *args: Any) -> None:
            self._epoll = epoll(*args)

        def poll(self, timeout: float = -1, maxevents: int = -1) -> list[tuple[int, int]]:
            ready = self._epoll.poll(timeout, maxevents)
            if ready:
                start()
            return ready

        def __getattr__(self, name: str) -> Any:
            return getattr(self._epoll, name)

    class HookedPoll:
        """select.poll whose ``poll`` starts collection when it returns input."""

        def __init__(self) -> None:
            self._poll = poll()

        def poll(self, *args: Any) -> list[tuple[int, int]]:
            ready = self._poll.poll(*args)
            if ready:
                start()
            return ready

        def __getattr__(self, name: str) -> Any:
            return getattr(self._poll, name)

    select.epoll = HookedEpoll  # type: ignore[misc,assignment]
    select.poll = HookedPoll  # type: ignore[misc,assignment]


def main() -> None:
    """Install the hooks, then run the script as ``__main__`` with its own arguments."""
    library, script, *args = sys.argv[1:]
    toggle = ctypes.CDLL(library).udprpc_cg_toggle
    toggle.restype = None
    _install(_Collector(toggle))
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
