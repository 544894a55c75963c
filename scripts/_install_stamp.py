"""Print a digest of everything the editable install depends on (used by scripts/_venv.sh).

The install is redone when this changes: the project metadata, the build hook, and the
sources mypyc compiles into extensions (an editable install does not rebuild those by itself).
"""

import hashlib
import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules() -> tuple[str, ...]:
    """``COMPILED_MODULES`` of ``rpc/_accel.py``, loaded on its own (standard library only:
    this runs with the bare ``python3`` that creates the virtualenv)."""
    spec = importlib.util.spec_from_file_location("_udprpc_accel", ROOT / "rpc" / "_accel.py")
    assert spec is not None
    assert spec.loader is not None
    accel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accel)
    return tuple(accel.COMPILED_MODULES)


def main() -> None:
    """Print the hex digest."""
    digest = hashlib.sha256(os.environ.get("UDPRPC_PURE_PYTHON", "").encode())
    sources = [ROOT / "rpc" / "transport" / f"{name}.py" for name in compiled_modules()]
    for path in [ROOT / "pyproject.toml", ROOT / "setup.py", *sources]:
        digest.update(path.read_bytes())
    print(digest.hexdigest())


if __name__ == "__main__":
    main()
