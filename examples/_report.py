"""The demo's report: per-phase counters of client, server and proxy, and latency percentiles."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import rpc
from rpc.testing.chaos_proxy import ProxyStatistics

#: Percentiles printed for each phase.
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class ServerCounts:
    """What the server counted during one phase (differences of two snapshots)."""

    transport: dict[str, int]
    cache_replays: int
    cache_duplicates_ignored: int


def _int_fields_minus(after: object, before: object) -> dict[str, int]:
    out = {}
    for f in dataclasses.fields(after):  # type: ignore[arg-type]
        value = getattr(after, f.name)
        if isinstance(value, int):
            out[f.name] = value - getattr(before, f.name)
    return out


def counters_between(before: rpc.ServerStatistics, after: rpc.ServerStatistics) -> ServerCounts:
    """The server's counters accumulated between two snapshots."""
    cache = _int_fields_minus(after.reply_cache, before.reply_cache)
    return ServerCounts(
        transport=_int_fields_minus(after.transport, before.transport),
        cache_replays=cache["hits"],
        cache_duplicates_ignored=cache["duplicates_ignored"],
    )


@dataclass(frozen=True)
class PhaseReport:
    """Everything one phase of the demo measured."""

    title: str
    calls: int
    in_flight: int
    concurrent_calls: int  # the rest went one at a time, and their latency is reported
    executed_records: int
    seconds: float
    latencies: list[float]  # sorted, seconds
    wrong: list[str]
    record_counts: int
    client: rpc.ClientStatistics
    server: ServerCounts
    proxy: ProxyStatistics | None


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without floats
    return sorted_values[int(rank) - 1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _lines(report: PhaseReport) -> list[tuple[str, str]]:
    client = dataclasses.asdict(report.client.transport)
    server = report.server.transport
    lat = report.latencies
    rows = [
        ("results verified", f"{report.calls - len(report.wrong)} of {report.calls} correct"),
        ("at-most-once", f"{report.record_counts} record() calls, handler ran "
                         f"{report.executed_records} times"),
        ("latency, one at a time", "  ".join(f"p{p} {_ms(percentile(lat, p))}" for p in PERCENTILES)
         + f"  max {_ms(lat[-1])}" if lat else "no calls"),
        ("datagrams sent", f"client {client['datagrams_sent']}, server {server['datagrams_sent']}"),
    ]
    if report.proxy is not None:
        up, down = report.proxy.to_server, report.proxy.to_client
        rows.append(("proxy did", f"lost {up.dropped_loss + down.dropped_loss}, duplicated "
                     f"{up.duplicated + down.duplicated}, corrupted {up.corrupted + down.corrupted}"
                     f" of {up.sent + down.sent} datagrams"))

    def both(name: str) -> int:
        return int(client[name]) + server[name]

    rows += [
        ("retransmissions", f"client {client['retransmissions']}, "
                            f"server {server['retransmissions']}"),
        ("duplicates dropped", f"{both('duplicate_datagrams')} datagrams, "
                               f"{both('duplicate_messages')} messages; reply-cache replays "
                               f"{report.server.cache_replays}"),
        ("corruption caught", f"{both('crc_failures')} CRC-32C failures, "
                              f"{both('malformed_dropped')} malformed"),
    ]
    return rows


def print_phase(report: PhaseReport) -> None:
    """Print one phase as an aligned block."""
    rate = report.calls / report.seconds if report.seconds > 0 else 0.0
    print(f"\n{report.title}: {report.calls} calls in {report.seconds:.2f} s ({rate:,.0f} calls/s;"
          f" {report.concurrent_calls} with {report.in_flight} in flight, then "
          f"{report.calls - report.concurrent_calls} one at a time)")
    for label, text in _lines(report):
        print(f"   {label:<22} {text}")
    for problem in report.wrong[:10]:
        print(f"   WRONG: {problem}")
