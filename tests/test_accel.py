"""The compiled transport core: stale extensions are never run, and the sources can be forced."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rpc import _accel

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _package(tmp_path: Path, sources: dict[str, bytes], built: list[str]) -> Path:
    for name, text in sources.items():
        (tmp_path / f"{name}.py").write_bytes(text)
    for name in built:
        (tmp_path / f"{name}{SUFFIX}").write_bytes(b"\x7fELF not really")
    return tmp_path


def _record(package: Path, sources: dict[str, bytes]) -> None:
    digests = {name: hashlib.sha256(text).hexdigest() for name, text in sources.items()}
    (package / _accel.MANIFEST_NAME).write_text(json.dumps(digests))


def test_only_modules_with_an_extension_file_count_as_built(tmp_path: Path) -> None:
    package = _package(tmp_path, {"wire": b"A = 1\n", "peer": b"B = 2\n"}, ["wire"])
    assert _accel.built_extensions(package, ("wire", "peer")) == ["wire"]


def test_matching_digests_are_fresh_and_an_edit_is_stale(tmp_path: Path) -> None:
    sources = {"wire": b"A = 1\n", "peer": b"B = 2\n"}
    package = _package(tmp_path, sources, ["wire", "peer"])
    _record(package, sources)
    assert _accel.stale_sources(package, ("wire", "peer")) == []
    (package / "peer.py").write_bytes(b"B = 3\n")
    assert _accel.stale_sources(package, ("wire", "peer")) == ["peer"]


@pytest.mark.parametrize("manifest", [None, "not json", "[1, 2]"])
def test_a_missing_or_unreadable_record_makes_everything_stale(
    tmp_path: Path, manifest: str | None
) -> None:
    package = _package(tmp_path, {"wire": b"A = 1\n"}, ["wire"])
    if manifest is not None:
        (package / _accel.MANIFEST_NAME).write_text(manifest)
    assert _accel.stale_sources(package, ("wire",)) == ["wire"]


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("1", True)])
def test_the_environment_can_ask_for_pure_python(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv(_accel.PURE_PYTHON_ENV, value)
    assert _accel.pure_python_requested() is expected


def _core_file(env: dict[str, str]) -> str:
    code = (
        "import rpc.transport.endpoint, rpc._accel as a;"
        " print(rpc.transport.endpoint.__file__, a.compiled_core())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_pure_python_request_loads_the_sources_in_a_fresh_interpreter() -> None:
    env = {**os.environ, _accel.PURE_PYTHON_ENV: "1"}
    path, compiled = _core_file(env).split()
    assert path.endswith("endpoint.py")
    assert compiled == "False"


def test_the_default_uses_the_extension_exactly_when_one_is_built_and_fresh() -> None:
    env = {key: value for key, value in os.environ.items() if key != _accel.PURE_PYTHON_ENV}
    path, compiled = _core_file(env).split()
    package = ROOT / "rpc" / _accel.CORE_PACKAGE
    usable = bool(_accel.built_extensions(package, _accel.COMPILED_MODULES)) and not (
        _accel.stale_sources(package, _accel.COMPILED_MODULES)
    )
    assert compiled == str(usable)
    assert path.endswith(".py") is not usable


_INSTALL = """
import sys, warnings
from pathlib import Path
import rpc._accel as a
package = Path(sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    a.install(package)
ours = [f for f in sys.meta_path if isinstance(f, a._SourceFirst) and f.package_dir == package]
spec = ours[0].find_spec("rpc.transport.wire", None) if ours else None
print(len(caught), len(ours), spec.origin if spec else None)
"""


@pytest.mark.parametrize("fresh", [True, False])
def test_install_loads_sources_and_warns_only_for_a_stale_build(
    tmp_path: Path, fresh: bool
) -> None:
    sources = {name: f"NAME = {name!r}\n".encode() for name in _accel.COMPILED_MODULES}
    package = _package(tmp_path, sources, list(_accel.COMPILED_MODULES))
    _record(package, sources)
    if not fresh:
        (package / "peer.py").write_bytes(b"NAME = 'edited'\n")
    env = {key: value for key, value in os.environ.items() if key != _accel.PURE_PYTHON_ENV}
    done = subprocess.run(
        [sys.executable, "-c", _INSTALL, str(package)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    warned, finders, origin = done.stdout.split()
    if fresh:
        assert (warned, finders, origin) == ("0", "0", "None")
    else:
        assert (warned, finders) == ("1", "1")
        assert origin == str(package / "wire.py")
