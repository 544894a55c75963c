"""The sans-I/O RPC layer: what a call is, independent of any event loop or socket.

Call messages (``callproto``), type descriptors (``schema``), service tables (``service``), the
server's at-most-once reply cache, the client's table of outstanding calls, dispatch to
handlers and the checks made on them, and the retry policy. It may import :mod:`rpc.errors`
and :mod:`rpc.transport` (events and statistics); never trio, asyncio, socket or select, nor
the drivers or the runtime above it.
"""

from rpc.calls.retry import NO_RETRY, RetryPolicy
from rpc.calls.service import AsyncCaller, Handler, MethodSpec, Param, ServiceSpec, SyncCaller

__all__ = [
    "NO_RETRY",
    "AsyncCaller",
    "Handler",
    "MethodSpec",
    "Param",
    "RetryPolicy",
    "ServiceSpec",
    "SyncCaller",
]
