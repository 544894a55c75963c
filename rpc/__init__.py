"""udprpc runtime: reliable, typed RPC over UDP on trio.

The public API is re-exported here; generated code imports only this package.
"""

from rpc.errors import (
    ApplicationError,
    BadDatagram,
    CallOutcome,
    CallRejected,
    ClientClosed,
    DeadlineExceeded,
    InvalidArgument,
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
from rpc.schema import ValidationError
from rpc.service import AsyncCaller, Handler, MethodSpec, Param, ServiceSpec, SyncCaller

__version__ = "0.1.0"

__all__ = [
    "ApplicationError",
    "AsyncCaller",
    "BadDatagram",
    "CallOutcome",
    "CallRejected",
    "ClientClosed",
    "DeadlineExceeded",
    "Handler",
    "InvalidArgument",
    "MethodSpec",
    "Param",
    "PeerUnreachable",
    "ProtocolError",
    "RemoteError",
    "RpcError",
    "ServerBusy",
    "ServerRestarted",
    "ServiceSpec",
    "ShuttingDown",
    "SyncCaller",
    "UnknownMethod",
    "UnknownService",
    "ValidationError",
    "VersionMismatch",
    "__version__",
]
