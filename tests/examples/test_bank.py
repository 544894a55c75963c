"""The bank example: money moved through the lossy chaos proxy, every balance exact."""

from __future__ import annotations

import re

import pytest

from tests.examples.harness import example_server, number_after, run_module

pytestmark = pytest.mark.realnet


def test_balances_are_exact_despite_loss_duplication_and_corruption() -> None:
    with example_server("examples.bank.server") as port:
        result = run_module("examples.bank.client", "--port", str(port), "--operations", "150")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "every balance is exact: each operation ran exactly once" in out
    assert "WRONG" not in out
    # The faults really happened, and the transport really had to repair them.
    assert number_after("lost", out) > 0
    assert number_after("duplicated", out) > 0
    assert number_after("corrupted", out) > 0
    assert number_after("client:", out) > 0  # retransmissions
    assert out.count(" ok\n") == 5  # one line per account
    applied = re.search(r"(\d+) applied", out)
    assert applied is not None
    assert int(applied.group(1)) == number_after("the bank executed", out)
