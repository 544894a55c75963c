"""gRPC (grpcio) baselines: the alternative a user would pick, sync and aio, on 127.0.0.1.

The service is registered with generic handlers on raw bytes (no protobuf code generation):
the request and reply serialisers are the identity, so gRPC does no marshalling work that our
framework's msgpack layer would have to match. This is the cheapest gRPC can be.

    python benchmarks/bench_grpc.py [--quick] [--mode sync|aio|both]

The server runs in a subprocess (``serve`` sub-command); the client runs in this process.
If grpcio is not installed, every section is reported as skipped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent import futures
from typing import Any

import _common as c

try:
    import grpc  # type: ignore[import-untyped, unused-ignore]
    import grpc.aio  # type: ignore[import-untyped, unused-ignore]
except ImportError:  # grpcio is optional: `pip install -e .[bench]`
    grpc = None

SERVICE = "bench.Bench"
METHOD = f"/{SERVICE}/Echo"
#: Message size limits on both ends (gRPC's default receive limit is 4 MiB).
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", c.MAX_MESSAGE),
    ("grpc.max_send_message_length", c.MAX_MESSAGE),
]
#: Worker threads of the sync server: enough for one sequential client and then some.
SYNC_SERVER_THREADS = 8
MISSING_GRPC = "grpcio is not installed (pip install -e '.[bench]')"


def _identity(data: bytes) -> bytes:
    """Serializer and deserializer of raw bytes."""
    return data


# --------------------------------------------------------------------------- servers


def _sync_echo(request: bytes, context: Any) -> bytes:
    return request


async def _aio_echo(request: bytes, context: Any) -> bytes:
    return request


def _handler(echo: Callable[..., Any]) -> Any:
    """The generic handler serving ``/bench.Bench/Echo`` on raw bytes."""
    method = grpc.unary_unary_rpc_method_handler(
        echo, request_deserializer=_identity, response_serializer=_identity
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"Echo": method})


def serve_sync() -> None:
    """Run the thread-pool gRPC server until the parent leaves."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=SYNC_SERVER_THREADS), options=CHANNEL_OPTIONS
    )
    server.add_generic_rpc_handlers((_handler(_sync_echo),))
    port = server.add_insecure_port(f"{c.LOOPBACK}:0")
    server.start()
    c.serve_forever_guard()
    c.announce_ready(port)
    server.wait_for_termination(timeout=c.SERVER_MAX_LIFETIME)


async def _serve_aio() -> None:
    server = grpc.aio.server(options=CHANNEL_OPTIONS)
    server.add_generic_rpc_handlers((_handler(_aio_echo),))
    port = server.add_insecure_port(f"{c.LOOPBACK}:0")
    await server.start()
    c.serve_forever_guard()
    c.announce_ready(port)
    await server.wait_for_termination(timeout=c.SERVER_MAX_LIFETIME)


SERVERS: dict[str, Callable[[], None]] = {
    "sync": serve_sync,
    "aio": lambda: asyncio.run(_serve_aio()),
}


# --------------------------------------------------------------------------- sync client


def _measure_sync(call: Callable[[bytes], bytes], payload: bytes, budget: c.Budget) -> c.Recorder:
    """Sequential calls of ``call(payload)`` within the budget."""
    for _ in range(budget.warmup_calls):
        if call(payload) != payload:
            raise RuntimeError("gRPC echo returned the wrong bytes")
    recorder = c.Recorder(budget)
    while recorder.running():
        start = time.perf_counter()
        call(payload)
        recorder.record(time.perf_counter() - start)
    recorder.finish()
    return recorder


def run_sync(port: int, profile: c.Profile) -> list[c.Result]:
    """Sequential small calls and payload throughput with the blocking client."""
    results = []
    with grpc.insecure_channel(f"{c.LOOPBACK}:{port}", options=CHANNEL_OPTIONS) as channel:
        echo = channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        rec = _measure_sync(echo, c.SMALL_PAYLOAD, profile.budget())
        results.append(c.Result.from_recorder("grpc-sync", "seq16", len(c.SMALL_PAYLOAD), rec))
        for name, size in c.PAYLOAD_SIZES.items():
            payload = c.payload_of(size)
            rec = _measure_sync(echo, payload, profile.budget(payload=size))
            results.append(c.Result.from_recorder("grpc-sync", name, size, rec))
    return results


# --------------------------------------------------------------------------- aio client

AsyncEcho = Callable[[bytes], Awaitable[bytes]]


async def _measure_aio(
    call: AsyncEcho, payload: bytes, budget: c.Budget, concurrency: int = 1
) -> c.Recorder:
    """``concurrency`` workers each making sequential calls, sharing one budget."""
    for _ in range(budget.warmup_calls):
        if await call(payload) != payload:
            raise RuntimeError("gRPC echo returned the wrong bytes")
    recorder = c.Recorder(budget)

    async def worker() -> None:
        while recorder.running():
            start = time.perf_counter()
            await call(payload)
            recorder.record(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    recorder.finish()
    return recorder


async def _run_aio(port: int, profile: c.Profile) -> list[c.Result]:
    results = []
    async with grpc.aio.insecure_channel(
        f"{c.LOOPBACK}:{port}", options=CHANNEL_OPTIONS
    ) as channel:
        echo = channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        small = len(c.SMALL_PAYLOAD)
        rec = await _measure_aio(echo, c.SMALL_PAYLOAD, profile.budget())
        results.append(c.Result.from_recorder("grpc-aio", "seq16", small, rec))
        rec = await _measure_aio(echo, c.SMALL_PAYLOAD, profile.budget(), c.IN_FLIGHT)
        results.append(c.Result.from_recorder("grpc-aio", f"inflight{c.IN_FLIGHT}", small, rec))
        for name, size in c.PAYLOAD_SIZES.items():
            payload = c.payload_of(size)
            rec = await _measure_aio(echo, payload, profile.budget(payload=size))
            results.append(c.Result.from_recorder("grpc-aio", name, size, rec))
    return results


def run_aio(port: int, profile: c.Profile) -> list[c.Result]:
    """Sequential, in-flight and payload sections with the asyncio client."""
    return asyncio.run(_run_aio(port, profile))


CLIENTS: dict[str, Callable[[int, c.Profile], list[c.Result]]] = {
    "sync": run_sync,
    "aio": run_aio,
}
WORKLOADS = {
    "sync": ["seq16", *c.PAYLOAD_SIZES],
    "aio": ["seq16", f"inflight{c.IN_FLIGHT}", *c.PAYLOAD_SIZES],
}


def run_mode(mode: str, profile: c.Profile) -> list[c.Result]:
    """Start the ``mode`` server in a subprocess and measure it with the ``mode`` client."""
    system = f"grpc-{mode}"
    if grpc is None:
        return [c.Result.skipped(system, w, MISSING_GRPC) for w in WORKLOADS[mode]]
    c.progress(f"[{system}] starting server")
    with c.server_process(c.python_command("bench_grpc.py", "serve", "--mode", mode)) as port:
        c.progress(f"[{system}] measuring ({profile.name})")
        return CLIENTS[mode](port, profile)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``serve --mode M`` runs a server; otherwise run the client sections."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        parser = c.base_parser("gRPC benchmark server")
        parser.add_argument("--mode", choices=sorted(SERVERS), required=True)
        args = parser.parse_args(args_list[1:])
        if grpc is None:
            print(MISSING_GRPC, file=sys.stderr)
            return 2
        SERVERS[args.mode]()
        return 0
    parser = c.base_parser(__doc__.splitlines()[0] if __doc__ else "gRPC benchmark")
    parser.add_argument("--mode", choices=["sync", "aio", "both"], default="both")
    args = parser.parse_args(args_list)
    if grpc is None:
        c.progress(f"gRPC sections skipped: {MISSING_GRPC}")
    modes = ["sync", "aio"] if args.mode == "both" else [args.mode]
    results = [r for mode in modes for r in run_mode(mode, c.profile_from_args(args))]
    c.print_results("gRPC (grpcio, raw bytes, generic handlers)", results, out=sys.stderr)
    if args.json:
        c.emit_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
