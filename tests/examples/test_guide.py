"""docs/guide.md is real: every Python block compiles, and the named files run as documented."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.cli import main as rpcgen
from rpc.transport.config import TransportConfig
from tests.examples.harness import ROOT, RUN_TIMEOUT, STOP_TIMEOUT, free_udp_port

GUIDE = ROOT / "docs" / "guide.md"
#: A block introduced by "`name.ext`:" is that file.
NAMED_BLOCK = re.compile(r"`([\w.]+)`(?: \([^)]*\))?:\n\n```\w*\n(.*?)```", re.S)


def guide_files() -> dict[str, str]:
    return dict(NAMED_BLOCK.findall(GUIDE.read_text()))


def test_every_python_block_compiles() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 6
    for block in blocks:
        compile(block, "guide.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_guide_names_its_files() -> None:
    assert set(guide_files()) == {
        "kv.idl", "kv_server.py", "kv_client.py", "kv_client_asyncio.py", "kv_sync_client.py",
        "test_kv.py",
    }


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=tmp, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
    )


@pytest.mark.realnet
def test_guide_files_run_as_documented(tmp_path: Path) -> None:
    port = str(free_udp_port())
    for name, text in guide_files().items():
        (tmp_path / name).write_text(text.replace("7000", port))
    assert rpcgen([str(tmp_path / "kv.idl"), "-o", str(tmp_path)]) == 0
    tested = run(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "-o", "trio_mode=true", "test_kv.py")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout
    server = subprocess.Popen(
        [sys.executable, "kv_server.py"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == f"serving on ('127.0.0.1', {port})\n"
        async_client = run(tmp_path, "kv_client.py")
        asyncio_client = run(tmp_path, "kv_client_asyncio.py")
        sync_client = run(tmp_path, "kv_sync_client.py")
    finally:
        server.terminate()
        server.communicate(timeout=STOP_TIMEOUT)
    assert async_client.returncode == 0, async_client.stderr
    lines = async_client.stdout.splitlines()
    assert lines[:3] == ["1 b'hello'", "missing: nope", "hits: 100"]
    assert re.fullmatch(r"round trip: \d+\.\d ms", lines[3])
    assert asyncio_client.returncode == 0, asyncio_client.stderr
    lines = asyncio_client.stdout.splitlines()  # the same calls again, on asyncio
    assert lines[:3] == ["2 b'hello'", "missing: nope", "hits: 200"]
    assert re.fullmatch(r"round trip: \d+\.\d ms", lines[3])
    assert sync_client.returncode == 0, sync_client.stderr
    assert sync_client.stdout == "b'hi'\n2 calls\n"


def test_generated_names_in_the_guide_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kv.idl").write_text(guide_files()["kv.idl"])
    assert rpcgen([str(tmp_path / "kv.idl"), "-o", str(tmp_path)]) == 0
    spec = importlib.util.spec_from_file_location("guide_kv", tmp_path / "kv.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    section = GUIDE.read_text().split("## Generating code", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `(\w+)` +\|", section, re.M)
    assert len(names) == 6
    for name in names:
        assert hasattr(module, name), name


def test_configuration_table_names_real_fields() -> None:
    section = GUIDE.read_text().split("## Configuration and tuning", 1)[1].split("\n## ", 1)[0]
    first_columns = re.findall(r"^\| ([^|]+) \|", section, re.M)[2:]  # skip header, rule
    names = [n for column in first_columns for n in re.findall(r"`(\w+)`", column)]
    assert len(names) >= 15
    fields = {f.name for f in dataclasses.fields(TransportConfig)}
    assert set(names) <= fields
    snippet = re.findall(r"```python\n(from rpc.transport.config .*?)```", section, re.S)
    namespace: dict[str, object] = {}
    exec(snippet[0], namespace)  # the example configuration is valid
    assert namespace["LOOPBACK"] == TransportConfig(max_datagram_size=65507, peer_timeout=5.0)
