"""The calculator example: its server and both clients, in separate processes over UDP."""

from __future__ import annotations

import pytest

from tests.examples.harness import example_server, run_module

pytestmark = pytest.mark.realnet


def test_async_and_sync_clients_against_the_server() -> None:
    with example_server("examples.calculator.server") as port:
        first = run_module("examples.calculator.client_async", "--port", str(port))
        second = run_module("examples.calculator.client_sync", "--port", str(port))
    assert first.returncode == 0, first.stderr
    assert "2 + 3 = 5\n7 / 2 = 3.5\n" in first.stdout
    assert "1 / 0 raised DivideByZero(dividend=1), executed" in first.stdout
    assert "squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "6 * 7 = 42\nsteps recorded: 1\n" in second.stdout
    assert "left=6, right=7, result=42" in second.stdout
    # 3 + 10 calls from the async client, then multiply from the sync one.
    assert "calls served: 14" in second.stdout


@pytest.mark.parametrize("client", ["client_async", "client_sync"])
def test_client_reports_what_a_failed_call_means(client: str) -> None:
    # Port 9 (discard): nothing listens there, and the kernel says so (ICMP port unreachable),
    # so the call fails at once, well before its deadline, and says it was never delivered.
    result = run_module(f"examples.calculator.{client}", "--port", "9", "--timeout", "30")
    assert result.returncode == 1
    assert result.stderr == (
        "error: PeerUnreachable: the server is not listening (port unreachable)"
        " (call not delivered)\n"
    )
