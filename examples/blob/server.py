"""The blob store server: ``python -m examples.blob.server [--port 7002]``.

It uses 64 KiB datagrams (``TransportConfig(max_datagram_size=MAX_UDP_PAYLOAD)``): on loopback
and most LANs that moves megabytes with a twentieth of the datagrams 1200-byte ones need.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict

import rpc
from examples._support import load_stubs, port_argument
from rpc.transport.config import MAX_UDP_PAYLOAD, TransportConfig

blob = load_stubs("blob")

#: Loopback carries datagrams up to the largest UDP payload.
LOOPBACK = TransportConfig(max_datagram_size=MAX_UDP_PAYLOAD)
#: Bounds of the in-memory store: the largest blob, and how many blobs it keeps (oldest go first).
MAX_BLOB_SIZE = 64 * 1024 * 1024
MAX_BLOBS = 8


class BlobStore(blob.BlobStoreHandler):  # type: ignore[misc,name-defined]
    """Blobs in memory."""

    def __init__(self) -> None:
        self.blobs: OrderedDict[str, bytearray] = OrderedDict()

    def _blob(self, name: str) -> bytearray:
        data = self.blobs.get(name)
        if data is None:
            raise blob.NoSuchBlob(name=name)
        return data

    async def write(self, name: str, offset: int, data: bytes) -> int:
        if offset + len(data) > MAX_BLOB_SIZE:
            raise blob.BlobTooLarge(size=offset + len(data), limit=MAX_BLOB_SIZE)
        if name not in self.blobs:
            while len(self.blobs) >= MAX_BLOBS:
                self.blobs.popitem(last=False)
            self.blobs[name] = bytearray()
        stored = self.blobs[name]
        if offset > len(stored):
            stored.extend(bytes(offset - len(stored)))
        stored[offset : offset + len(data)] = data
        return len(stored)

    async def read(self, name: str, offset: int, length: int) -> bytes:
        return bytes(self._blob(name)[offset : offset + length])

    async def stat(self, name: str) -> object:
        data = self._blob(name)
        return blob.BlobInfo(name=name, size=len(data), sha256=hashlib.sha256(data).digest())


def main() -> int:
    """Serve the blob store until Ctrl-C or SIGTERM; running calls finish first."""
    args = port_argument("Serve the blob store over UDP.", 7002).parse_args()
    rpc.run_server(
        [BlobStore()], host=args.host, port=args.port, config=LOOPBACK,
        ready=lambda address: print(
            f"blob server listening on {address[0]}:{address[1]}", flush=True
        ),
    )
    print("blob server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
