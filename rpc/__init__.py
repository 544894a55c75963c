"""udprpc runtime: reliable, typed RPC over UDP on trio.

The public API is re-exported here; generated code imports only this package.
"""

# ruff: noqa: E402  (the transport-core guard must run before the imports below)
import logging

from rpc import _accel

_accel.install()  # before anything imports the transport core: never run a stale extension

from rpc import aio as aio  # rpc.aio.connect: the asyncio client
from rpc._serving import run_server
from rpc.calls import schema as schema  # generated code refers to rpc.schema.<descriptor>
from rpc.calls.reply_cache import ReplyCache, ReplyCacheStatistics
from rpc.calls.retry import NO_RETRY, RetryPolicy
from rpc.calls.service import AsyncCaller, Handler, MethodSpec, Param, ServiceSpec, SyncCaller
from rpc.client import Client, ClientStatistics, connect
from rpc.context import CallContext, current_call, run_sync_in_thread
from rpc.errors import (
    ApplicationError,
    BadDatagram,
    CallLost,
    CallOutcome,
    CallRejected,
    ClientClosed,
    DeadlineExceeded,
    InvalidArgument,
    MessageTooLarge,
    PeerUnreachable,
    ProtocolError,
    RemoteError,
    RpcError,
    ServerBusy,
    ServerRestarted,
    ShuttingDown,
    UnknownMethod,
    UnknownService,
    VersionMismatch,
)
from rpc.server import Server, ServerStatistics
from rpc.sync import SyncClient

# Library loggers stay quiet unless the application configures logging (logging HOWTO,
# "Configuring Logging for a Library").
logging.getLogger("rpc").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "NO_RETRY",
    "ApplicationError",
    "AsyncCaller",
    "BadDatagram",
    "CallContext",
    "CallLost",
    "CallOutcome",
    "CallRejected",
    "Client",
    "ClientClosed",
    "ClientStatistics",
    "DeadlineExceeded",
    "Handler",
    "InvalidArgument",
    "MessageTooLarge",
    "MethodSpec",
    "Param",
    "PeerUnreachable",
    "ProtocolError",
    "RemoteError",
    "ReplyCache",
    "ReplyCacheStatistics",
    "RetryPolicy",
    "RpcError",
    "Server",
    "ServerBusy",
    "ServerRestarted",
    "ServerStatistics",
    "ServiceSpec",
    "ShuttingDown",
    "SyncCaller",
    "SyncClient",
    "UnknownMethod",
    "UnknownService",
    "VersionMismatch",
    "__version__",
    "connect",
    "current_call",
    "run_server",
    "run_sync_in_thread",
]
