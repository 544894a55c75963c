"""Upload and download multi-megabyte blobs, with progress, and check their SHA-256.

``python -m examples.blob.client [--port 7002] [--size-mib 8] [--chunk-mib 2]``

Two files go up and come back: text that compresses well and random bytes that do not. Each
call carries one chunk of megabytes: the transport splits it into datagrams, compresses it when
that makes it smaller (zstd), and reassembles it. The summary shows what went over the wire.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import trio

import rpc
from examples._support import load_stubs, port_argument
from examples.blob.server import LOOPBACK

blob = load_stubs("blob")

MIB = 1024 * 1024
TIMEOUT = 30.0  # per chunk: generous, so a failure means a bug rather than a slow machine
BAR_WIDTH = 24


def compressible(size: int) -> bytes:
    """Log-like text: zstd shrinks it many times over."""
    line = b"2026-11-21 12:00:00 INFO request served in 0.42 ms by worker %06d\n"
    out = bytearray()
    n = 0
    while len(out) < size:
        out += line % n
        n += 1
    return bytes(out[:size])


def incompressible(size: int) -> bytes:
    """Seeded random bytes: no compressor can shrink them."""
    return random.Random(7).randbytes(size)


def progress(verb: str, name: str, done: int, total: int) -> None:
    """One progress line: redrawn in place on a terminal, one line per chunk otherwise."""
    filled = BAR_WIDTH * done // total
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    text = f"  {verb:<8} {name:<18} [{bar}] {done / MIB:5.1f} / {total / MIB:.1f} MiB"
    if sys.stdout.isatty():
        print("\r" + text, end="\n" if done == total else "", flush=True)
    else:
        print(text, flush=True)


async def upload(store: Any, name: str, data: bytes, chunk: int) -> None:
    """Write ``data`` chunk by chunk."""
    for offset in range(0, len(data), chunk):
        await store.write(name, offset, data[offset : offset + chunk], timeout=TIMEOUT)
        progress("upload", name, min(offset + chunk, len(data)), len(data))


async def download(store: Any, name: str, size: int, chunk: int) -> bytes:
    """Read ``size`` bytes back chunk by chunk."""
    out = bytearray()
    while len(out) < size:
        out += await store.read(name, len(out), min(chunk, size - len(out)), timeout=TIMEOUT)
        progress("download", name, len(out), size)
    return bytes(out)


async def round_trip(
    connection: rpc.Client, name: str, data: bytes, chunk: int
) -> tuple[bool, str]:
    """Upload, check the server's hash, download, check ours; returns (ok, summary)."""
    store = blob.BlobStoreClient(connection)
    digest = hashlib.sha256(data).digest()
    sent_before = connection.statistics().transport.bytes_sent
    start = time.perf_counter()
    await upload(store, name, data, chunk)
    up_seconds = time.perf_counter() - start
    wire = connection.statistics().transport.bytes_sent - sent_before
    info = await store.stat(name, timeout=TIMEOUT)
    start = time.perf_counter()
    back = await download(store, name, len(data), chunk)
    down_seconds = time.perf_counter() - start
    stored_ok = info.size == len(data) and info.sha256 == digest
    ok = stored_ok and hashlib.sha256(back).digest() == digest
    mb = len(data) / 1e6
    summary = (
        f"{name}: {len(data) / MIB:.1f} MiB, {wire / MIB:.2f} MiB on the wire "
        f"({len(data) / max(wire, 1):.1f}x), up {mb / up_seconds:.0f} MB/s, "
        f"down {mb / down_seconds:.0f} MB/s, sha256 {digest.hex()[:16]}... "
        + ("matches" if ok else "MISMATCH")
    )
    return ok, summary


async def main(host: str, port: int, size: int, chunk: int) -> int:
    """Move both files up and down; 0 when every hash matched."""
    files: dict[str, Callable[[int], bytes]] = {
        "compressible.log": compressible,
        "incompressible.bin": incompressible,
    }
    summaries = []
    all_ok = True
    async with rpc.connect(host, port, config=LOOPBACK) as connection:
        for name, make in files.items():
            ok, summary = await round_trip(connection, name, make(size), chunk)
            all_ok = all_ok and ok
            summaries.append(summary)
        transport = connection.statistics().transport
    for summary in summaries:
        print(summary)
    print(f"transport: {transport.datagrams_sent} datagrams sent, {transport.datagrams_received} "
          f"received, {transport.messages_compressed} messages compressed, "
          f"{transport.retransmissions} retransmissions")
    print("all hashes match" if all_ok else "HASH MISMATCH")
    return 0 if all_ok else 1


if __name__ == "__main__":
    parser = port_argument("Move multi-megabyte blobs to and from the blob server.", 7002)
    parser.add_argument("--size-mib", type=float, default=8.0, help="size of each file")
    parser.add_argument("--chunk-mib", type=float, default=2.0, help="bytes per call")
    args = parser.parse_args()
    size, chunk = int(args.size_mib * MIB), int(args.chunk_mib * MIB)
    sys.exit(trio.run(main, args.host, args.port, size, chunk))
