"""Tools for testing code built on udprpc: a simulated network and a chaos proxy.

``SimNetwork`` is a seeded, deterministic datagram network for trio tests (run them on
``trio.testing.MockClock(autojump_threshold=0)``, pytest-trio's ``autojump_clock`` fixture): it
loses, duplicates, reorders, delays, corrupts and truncates datagrams per direction, has blackhole
periods and partitions, and records what it did. ``ChaosProxy`` applies the same faults to real
UDP traffic on 127.0.0.1 (``ChaosProxyThread`` runs one in a thread, for asyncio or blocking
tests). ``simulated_service`` runs a server and a client over a
``SimNetwork`` in a few lines (and can kill and restart the server).

The top layer: it may import anything in ``rpc``; nothing in ``rpc`` but this package imports it.
"""

from __future__ import annotations

from rpc.testing._faults import DropCause, FaultStatistics, GilbertElliott, LinkFaults
from rpc.testing._harness import DEFAULT_SERVER_ADDRESS, SimService, simulated_service
from rpc.testing._proxy_thread import ChaosProxyThread
from rpc.testing._simnet import SimNetwork, SimSocket, TraceEvent
from rpc.testing.chaos_proxy import ChaosProxy, ProxyStatistics

__all__ = [
    "DEFAULT_SERVER_ADDRESS",
    "ChaosProxy",
    "ChaosProxyThread",
    "DropCause",
    "FaultStatistics",
    "GilbertElliott",
    "LinkFaults",
    "ProxyStatistics",
    "SimNetwork",
    "SimService",
    "SimSocket",
    "TraceEvent",
    "simulated_service",
]
