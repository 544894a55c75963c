"""Build hook: compile the transport core with mypyc, falling back to pure Python.

Everything else about the distribution is declared in ``pyproject.toml``. The modules in
``COMPILED_MODULES`` of ``rpc/_accel.py`` run once or more per datagram; compiled to C by mypyc
(from the same type-annotated sources) they cost about half the CPU. The build stays pure Python
when ``UDPRPC_PURE_PYTHON=1`` is set, when mypyc is not importable, or when the C compiler fails
(each extension is optional), and the runtime works identically either way.

Next to the extensions the build writes ``rpc/_compiled.json``, the SHA-256 of each compiled
source, so that ``rpc._accel`` can tell when an edited source no longer matches its extension
(an editable install keeps the extension next to the ``.py`` and Python would prefer it).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def _compiled_modules() -> tuple[str, ...]:
    """``COMPILED_MODULES`` from ``rpc/_accel.py``, read from its text: the package and its
    dependencies may not be importable while building."""
    tree = ast.parse((ROOT / "rpc" / "_accel.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "COMPILED_MODULES"
            and node.value is not None
        ):
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("rpc/_accel.py does not define COMPILED_MODULES")


def _pure_python_requested() -> bool:
    return os.environ.get("UDPRPC_PURE_PYTHON", "").strip() not in ("", "0")


def _write_manifest(modules: tuple[str, ...]) -> None:
    digests = {
        name: hashlib.sha256((ROOT / "rpc" / f"{name}.py").read_bytes()).hexdigest()
        for name in modules
    }
    manifest = ROOT / "rpc" / "_compiled.json"
    manifest.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _extensions() -> list[Any]:
    manifest = ROOT / "rpc" / "_compiled.json"
    if _pure_python_requested():
        manifest.unlink(missing_ok=True)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        manifest.unlink(missing_ok=True)
        return []
    modules = _compiled_modules()
    # Only the compiled modules must type-check here: what they import is analysed silently,
    # and a dependency the build environment lacks is typed Any rather than an error (the
    # build runs before the runtime's dependencies are installed into a fresh environment).
    flags = ["--follow-imports=silent", "--ignore-missing-imports", "--no-warn-return-any"]
    try:
        extensions = mypycify([*flags, *(f"rpc/{name}.py" for name in modules)], opt_level="3")
    except (Exception, SystemExit) as exc:  # a mypy that disagrees: stay pure Python
        print(f"udprpc: not compiling the transport core ({exc!r})", file=sys.stderr)
        manifest.unlink(missing_ok=True)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: install the pure-Python modules instead
    _write_manifest(modules)
    return list(extensions)


setup(ext_modules=_extensions())
