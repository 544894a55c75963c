"""The compiled transport core: which modules mypyc compiles, and never running a stale one.

``setup.py`` compiles :data:`COMPILED_MODULES` with mypyc when it can; the sources stay the
reference implementation (the same files, type-checked and tested), and the package works the
same without the extensions. Two things make the interpreter use the sources instead:

* ``UDPRPC_PURE_PYTHON=1`` in the environment (to compare, or to debug with pure-Python tools);
* an extension that no longer matches its source. An editable install keeps ``peer.so`` next to
  ``peer.py`` and Python prefers the extension, so an edited ``peer.py`` would silently not run.
  The build records each source's SHA-256 in ``_compiled.json``; on a mismatch this module warns
  and loads every compiled module from source (all or none: they call each other natively).

:func:`install` runs first thing in ``rpc/__init__.py``, before any of these modules is imported.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

#: Modules of ``rpc`` compiled by mypyc: the per-datagram hot path and the classes it uses.
#: ``setup.py`` and ``scripts/_install_stamp.py`` load this file on its own (standard library
#: imports only, so that works before the runtime's dependencies are installed).
COMPILED_MODULES: Final = (
    "acks",
    "compression",
    "config",
    "endpoint",
    "events",
    "fragments",
    "peer",
    "recovery",
    "rtt",
    "stats",
    "wire",
)
#: Set to anything but ``0`` to run the pure-Python sources even when extensions are built.
PURE_PYTHON_ENV: Final = "UDPRPC_PURE_PYTHON"
#: Written by the build next to the extensions: ``{module: sha256 of its source}``.
MANIFEST_NAME: Final = "_compiled.json"

#: The package whose modules are compiled: the sans-I/O transport.
CORE_PACKAGE: Final = "transport"
_PACKAGE_DIR: Final = Path(__file__).resolve().parent / CORE_PACKAGE


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the listed ``rpc`` modules as ``.py`` files, ahead of their extensions."""

    def __init__(self, package_dir: Path, modules: Sequence[str]) -> None:
        self.package_dir = package_dir
        self._modules = frozenset(modules)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """A source spec for a listed module, None (ask the next finder) otherwise."""
        package, _, name = fullname.rpartition(".")
        if package != f"{__package__}.{CORE_PACKAGE}" or name not in self._modules:
            return None
        return importlib.util.spec_from_file_location(fullname, self.package_dir / f"{name}.py")


def built_extensions(package_dir: Path, modules: Sequence[str]) -> list[str]:
    """The modules that have a compiled extension file in ``package_dir``."""
    return [
        name
        for name in modules
        if any(
            (package_dir / f"{name}{suffix}").exists()
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
        )
    ]


def source_digest(package_dir: Path, name: str) -> str:
    """The SHA-256 of module ``name``'s source (what the build records for its extension)."""
    return hashlib.sha256((package_dir / f"{name}.py").read_bytes()).hexdigest()


def write_manifest(package_dir: Path, modules: Sequence[str]) -> None:
    """Record the digest of each compiled module's source next to the extensions (build time)."""
    digests = {name: source_digest(package_dir, name) for name in modules}
    text = json.dumps(digests, indent=1, sort_keys=True) + "\n"
    (package_dir / MANIFEST_NAME).write_text(text, encoding="utf-8")


def stale_sources(package_dir: Path, modules: Sequence[str]) -> list[str]:
    """The modules whose source no longer matches the digest recorded when they were compiled
    (all of them when the record is missing or unreadable)."""
    try:
        recorded = json.loads((package_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return list(modules)
    if not isinstance(recorded, dict):
        return list(modules)
    stale = []
    for name in modules:
        try:
            digest = source_digest(package_dir, name)
        except OSError:  # installed without sources: the extension is all there is
            continue
        if recorded.get(name) != digest:
            stale.append(name)
    return stale


def pure_python_requested() -> bool:
    """Whether the environment asks for the pure-Python modules."""
    return os.environ.get(PURE_PYTHON_ENV, "").strip() not in ("", "0")


def install(package_dir: Path = _PACKAGE_DIR) -> None:
    """Make the interpreter load the sources when asked to, or when an extension is stale."""
    built = built_extensions(package_dir, COMPILED_MODULES)
    if not built:
        return
    if not pure_python_requested():
        stale = stale_sources(package_dir, built)
        if not stale:
            return
        warnings.warn(
            f"compiled transport core is out of date with rpc/{CORE_PACKAGE}/{stale[0]}.py; "
            "running the "
            "pure-Python modules (rebuild with `pip install -e .` or scripts/test.sh)",
            RuntimeWarning,
            stacklevel=2,
        )
    if not any(
        isinstance(finder, _SourceFirst) and finder.package_dir == package_dir
        for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _SourceFirst(package_dir, COMPILED_MODULES))


def compiled_core() -> bool:
    """Whether the transport core in use is the compiled one (imports it if needed)."""
    from rpc.transport import endpoint

    return not (endpoint.__file__ or "").endswith(".py")
