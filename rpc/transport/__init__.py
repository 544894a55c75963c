"""The sans-I/O transport: reliable, at-most-once delivery of whole messages over datagrams.

Wire format and CRC, ACK ranges, RTT estimation, loss recovery and congestion control,
fragmentation and bounded reassembly, the per-peer session, the endpoint, its events,
statistics and configuration. Time is always an argument and nothing here touches a socket:
these modules import only the standard library, ``zstandard``/``crcmod`` (compression, CRC) and
:mod:`rpc.errors`; never trio, asyncio, socket or select, nor any other part of ``rpc``. Most
of them are compiled by mypyc (``rpc._accel``).
"""

from rpc.transport.config import TransportConfig
from rpc.transport.endpoint import Endpoint
from rpc.transport.stats import EndpointStatistics, PeerStatistics

__all__ = ["Endpoint", "EndpointStatistics", "PeerStatistics", "TransportConfig"]
