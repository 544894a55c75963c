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

__version__ = "0.1.0"

__all__ = [
    "ApplicationError",
    "BadDatagram",
    "CallOutcome",
    "CallRejected",
    "ClientClosed",
    "DeadlineExceeded",
    "InvalidArgument",
    "PeerUnreachable",
    "ProtocolError",
    "RemoteError",
    "RpcError",
    "ServerBusy",
    "ServerRestarted",
    "ShuttingDown",
    "UnknownMethod",
    "UnknownService",
    "VersionMismatch",
    "__version__",
]
