"""Build hook: compile the transport core with mypyc, falling back to pure Python.

Everything else about the distribution is declared in ``pyproject.toml``. The modules in
``COMPILED_MODULES`` of ``rpc/_accel.py`` run once or more per datagram; compiled to C by mypyc
(from the same type-annotated sources) they cost about half the CPU. The build stays pure Python
when ``UDPRPC_PURE_PYTHON=1`` is set, when mypyc is not importable, or when the C compiler fails
(each extension is optional), and the runtime works identically either way.

Next to the extensions the build writes ``rpc/transport/_compiled.json``, the SHA-256 of each
compiled source, so that ``rpc._accel`` can tell when an edited source no longer matches its
extension (an editable install keeps the extension next to the ``.py`` and Python would prefer it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import setup

PACKAGE_DIR = Path(__file__).resolve().parent / "rpc"


def _load_accel() -> ModuleType:
    """``rpc/_accel.py`` on its own: it needs only the standard library, while the package's
    dependencies may not be installed yet when building."""
    spec = importlib.util.spec_from_file_location("_udprpc_accel", PACKAGE_DIR / "_accel.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _extensions() -> list[Any]:
    accel = _load_accel()
    core_dir = PACKAGE_DIR / accel.CORE_PACKAGE
    manifest = core_dir / accel.MANIFEST_NAME
    if accel.pure_python_requested():
        manifest.unlink(missing_ok=True)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        manifest.unlink(missing_ok=True)
        return []
    modules = accel.COMPILED_MODULES
    # Only the compiled modules must type-check here: what they import is analysed silently,
    # and a dependency the build environment lacks is typed Any rather than an error (the
    # build runs before the runtime's dependencies are installed into a fresh environment).
    flags = ["--follow-imports=silent", "--ignore-missing-imports", "--no-warn-return-any"]
    try:
        paths = [f"rpc/{accel.CORE_PACKAGE}/{name}.py" for name in modules]
        extensions = mypycify([*flags, *paths], opt_level="3")
    except (Exception, SystemExit) as exc:  # a mypy that disagrees: stay pure Python
        print(f"udprpc: not compiling the transport core ({exc!r})", file=sys.stderr)
        manifest.unlink(missing_ok=True)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: install the pure-Python modules instead
    accel.write_manifest(core_dir, modules)
    return list(extensions)


setup(ext_modules=_extensions())
