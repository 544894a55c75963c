"""The benchmark harness itself (percentiles, results, ratios, targets, server processes).

The benchmarks are run by hand and never timed here; these tests only keep their plumbing
honest, so a broken harness cannot print plausible but wrong tables.
"""

from __future__ import annotations

import json
import math
import sys
import zlib

import _common as c
import bench_endpoint
import pytest
import run_all


def result(system: str, workload: str, calls: int, **kw: float) -> c.Result:
    """A result of ``calls`` calls in one second."""
    fields = {"p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0, "payload": 16, **kw}
    return c.Result(system, workload, calls, 1.0, **fields)


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.0, 1.0), (0.5, 50.0), (0.99, 99.0), (1.0, 100.0)]
)
def test_percentile_is_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(1, 101)]
    assert c.percentile(values, fraction) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(c.percentile([], 0.5))


def test_recorder_stops_at_its_call_count() -> None:
    recorder = c.Recorder(c.Budget(seconds=60.0, max_calls=5))
    issued = 0
    while recorder.running() and issued < 100:
        issued += 1
    assert issued == 5


def test_recorder_stops_at_its_deadline() -> None:
    recorder = c.Recorder(c.Budget(seconds=0.0, max_calls=1000))
    assert not recorder.running()


def test_results_survive_the_json_line_with_nan() -> None:
    original = [result("udprpc-async", "seq16", 1000), c.Result.skipped("grpc-aio", "1MiB", "x")]
    line = "noise\n" + c.RESULTS_PREFIX + json.dumps([r.to_json() for r in original]) + "\n"
    parsed = c.parse_results(line)
    assert parsed[0] == original[0]
    assert (parsed[1].note, math.isnan(parsed[1].p50_ms)) == ("skipped: x", True)


def test_mb_per_s_counts_the_request_payload_once() -> None:
    assert result("s", "1MiB", 100, payload=1_000_000).mb_per_s == pytest.approx(100.0)


def test_payloads_are_deterministic_and_incompressible() -> None:
    payload = c.payload_of(64 * 1024)
    assert payload == c.payload_of(64 * 1024)
    assert len(zlib.compress(payload)) > 0.99 * len(payload)


def test_median_of_rounds_takes_the_middle_round_per_figure() -> None:
    rounds = [[result("a", "seq16", n)] for n in (300, 100, 200)]
    assert run_all.median_of_rounds(rounds)[0].calls == 200


def test_ratios_compare_with_raw_trio_and_the_matching_grpc_client() -> None:
    figures = run_all.Figures(
        [
            result("raw-trio", "seq16", 1000),
            result("grpc-aio", "seq16", 100),
            result("grpc-sync", "seq16", 50),
            result("udprpc-async", "seq16", 600),
        ]
    )
    mine = figures.get("udprpc-async", "seq16")
    assert mine is not None
    assert (figures.raw_ratio(mine), figures.grpc_ratio(mine)) == (0.6, 6.0)


def test_targets_pass_miss_and_say_when_unmeasured() -> None:
    figures = run_all.Figures(
        [result("udprpc-async", "seq16", 599), result("raw-trio", "seq16", 1000)]
    )
    verdicts = {t.text: t.check(figures)[0] for t in run_all.TARGETS}
    assert verdicts["udprpc-async seq16 >= 0.6x raw-trio seq16"] is False
    assert verdicts["udprpc-async seq16 >= 4.0x grpc-aio seq16"] is None


def test_paired_rows_are_the_median_pair_and_judge_the_ratio_target() -> None:
    import paired

    pairs = [
        paired.Pair(result("raw-trio", "seq16", raw), result("udprpc-async", "seq16", mine))
        for raw, mine in ((1000, 500), (2000, 1400), (1000, 650), (1500, 600))
    ]
    # Ratios 0.5, 0.7, 0.65, 0.4: for an even count the lower middle one, 0.5.
    assert paired.median_pair(pairs).ratio == 0.5
    rows = paired.as_results({"udprpc-async": pairs[:3]})  # 0.5, 0.7, 0.65: the median 0.65
    assert [(r.system, r.workload, r.calls) for r in rows] == [
        ("raw-trio", "pair:udprpc-async", 1000),
        ("udprpc-async", "pair:udprpc-async", 650),
    ]
    verdicts = {t.text: t.check(run_all.Figures(rows))[0] for t in run_all.TARGETS}
    assert verdicts["udprpc-async pair:udprpc-async >= 0.6x raw-trio pair:udprpc-async"] is True


def test_cpu_bound_rate_adds_client_and_server_cpu() -> None:
    r = result("s", "seq16", 10, client_cpu_us=300.0, server_cpu_us=200.0)
    assert r.cpu_bound_rate == pytest.approx(2000.0)


SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import _common as c
c.serve_forever_guard(max_lifetime=60)
c.announce_ready(4242)
time.sleep(60)
"""


def test_server_process_handshake_cpu_query_and_teardown() -> None:
    argv = [sys.executable, "-c", SERVER, str(c.BENCH_DIR)]
    with c.server_process(argv) as port:
        server = c._measured_servers[-1]
        cpu = server.cpu_seconds()
        proc = server._proc
        assert (port, cpu is not None and cpu >= 0.0) == (4242, True)
    assert (proc.poll() is not None, c._measured_servers) == (True, [])


def test_server_that_never_becomes_ready_is_reported_and_stopped() -> None:
    argv = [sys.executable, "-c", "print('oops', flush=True)"]
    with pytest.raises(RuntimeError, match="did not start"), c.server_process(argv):
        pass


def test_notes_are_grouped_per_system_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    skipped = [c.Result.skipped("grpc-aio", w, "no grpcio") for w in ("seq16", "1MiB")]
    c.print_notes([*skipped, result("udprpc-sync", "seq16", 5, errors=2)])
    assert capsys.readouterr().out.splitlines() == [
        "  note: grpc-aio seq16, 1MiB: skipped: no grpcio",
        "  note: udprpc-sync seq16: 2 failed calls",
    ]


def test_instruction_count_is_the_difference_per_extra_round_trip() -> None:
    stderr = "==7== Events    : Ir\n==7== Collected : 1,234,567\n==7==\n==7== I   refs: 1,234,567\n"
    assert bench_endpoint.collected_instructions(stderr) == 1_234_567
    assert bench_endpoint.per_round_trip((200, 1_000_000), (1200, 3_000_000)) == 2000.0
    with pytest.raises(ValueError, match="more round trips"):
        bench_endpoint.per_round_trip((1200, 3_000_000), (200, 1_000_000))
    with pytest.raises(SystemExit):
        bench_endpoint.collected_instructions("valgrind: not found")
