"""The README's example (IDL, server, client) is real: generate, serve and call it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.cli import main as rpcgen
from tests.examples.harness import ROOT, STARTUP_TIMEOUT, STOP_TIMEOUT, free_udp_port

pytestmark = pytest.mark.realnet

README = ROOT / "README.md"
READY = "ready"


def readme_example() -> tuple[str, str, str]:
    """The IDL, server and client blocks of the README's Example section."""
    section = README.read_text().split("## Example", 1)[1].split("\n## ", 1)[0]
    idl = re.findall(r"`hello\.idl`:\n\n```\n(.*?)```", section, re.S)
    server, client = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(idl) == 1
    return idl[0], server, client


def test_readme_example_runs(tmp_path: Path) -> None:
    idl, server, client = readme_example()
    port = str(free_udp_port())
    (tmp_path / "hello.idl").write_text(idl)
    # Announce readiness so the test needs no sleeps; use a free port instead of 7000.
    assert server.count("port=7000)") == 1  # rpc.run_server([...], port=7000)
    ready = f"port={port}, ready=lambda address: print({READY!r}, flush=True))"
    (tmp_path / "server.py").write_text(server.replace("port=7000)", ready))
    (tmp_path / "client.py").write_text(client.replace("7000", port))
    assert rpcgen([str(tmp_path / "hello.idl"), "-o", str(tmp_path)]) == 0
    proc = subprocess.Popen(
        [sys.executable, "server.py"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == READY + "\n"  # pytest-timeout bounds a hang
        result = subprocess.run(
            [sys.executable, "client.py"], cwd=tmp_path, capture_output=True, text=True,
            timeout=STARTUP_TIMEOUT, check=False,
        )
    finally:
        proc.terminate()  # SIGTERM: run_server drains and returns
        proc.communicate(timeout=STOP_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert proc.returncode == 0
