"""Run example programs as subprocesses, each bounded in time, on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import importlib.util
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from codegen.cli import main as rpcgen

ROOT = Path(__file__).resolve().parents[2]
#: Bounds: a hang fails the test instead of stalling the suite (the machine may be loaded).
STARTUP_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def generate_service(
    directory: Path, name: str, idl: str, server_script: str, module_name: str
) -> ModuleType:
    """Write ``NAME.idl`` and ``NAME_server.py`` into ``directory``, run rpcgen there, and
    import the generated ``NAME.py`` as ``module_name`` (for tests of real server processes)."""
    (directory / f"{name}.idl").write_text(idl)
    (directory / f"{name}_server.py").write_text(server_script)
    assert rpcgen([str(directory / f"{name}.idl"), "-o", str(directory)]) == 0
    spec = importlib.util.spec_from_file_location(module_name, directory / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module args...`` from the repository root; output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _first_line(proc: subprocess.Popen[str]) -> str:
    """The server's first line, or "" if it says nothing within STARTUP_TIMEOUT."""
    assert proc.stdout is not None
    killer = threading.Timer(STARTUP_TIMEOUT, proc.kill)
    killer.start()
    try:
        return proc.stdout.readline()
    finally:
        killer.cancel()


@contextlib.contextmanager
def example_server(module: str) -> Iterator[int]:
    """Start an example server on a free port; yield the port; stop it with SIGTERM.

    On exit it checks that the server shut down gracefully and wrote nothing to stderr.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(proc)
        found = _LISTENING.search(line)
        assert found is not None, f"{module} did not announce its port: {line!r}"
        yield int(found.group(1))
    finally:
        proc.terminate()  # SIGTERM: the example servers shut down gracefully
        out, err = proc.communicate(timeout=STOP_TIMEOUT)
    assert err == ""
    assert proc.returncode == 0
    assert "server stopped" in out


def number_after(label: str, text: str) -> int:
    """The integer that follows ``label`` in ``text`` (the test fails if there is none).

    Runs of spaces in ``label`` match any run of whitespace, so column alignment may change.
    """
    pattern = r"\s+".join(re.escape(word) for word in label.split())  # any spacing
    found = re.search(pattern + r"\s*(\d+)", text)
    assert found is not None, f"{label!r} not in output:\n{text}"
    return int(found.group(1))
