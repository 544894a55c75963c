"""The demo (quick-start command 1): clean network, then chaos; exit 0 only if all was right."""

from __future__ import annotations

import pytest

from tests.examples.harness import number_after, run_module

pytestmark = pytest.mark.realnet


def test_quick_demo_verifies_every_result_under_chaos() -> None:
    result = run_module("examples.demo", "--quick")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "OK: all 400 results verified; every record() ran exactly once." in out
    assert out.count("200 of 200 correct") == 2
    assert out.count("50 record() calls, handler ran 50 times") == 2
    chaos = out[out.index("2. through the chaos proxy"):]
    assert number_after("lost", chaos) > 0
    assert number_after("corrupted", chaos) > 0
    assert number_after("retransmissions client", chaos) > 0
    assert number_after("corruption caught", chaos) > 0  # CRC-32C failures
    assert "p99" in chaos
    assert "800 with 8 in flight, then 200 one at a time" not in out  # quick: 200 per phase
    assert out.count("160 with 8 in flight, then 40 one at a time") == 2


def test_demo_exits_1_when_a_result_is_wrong() -> None:
    result = run_module("tests.examples.broken_demo")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: 1 of 80 calls went wrong" in result.stdout
    assert "WRONG: add(" in result.stdout
