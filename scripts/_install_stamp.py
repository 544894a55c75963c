"""Print a digest of everything the editable install depends on (used by scripts/_venv.sh).

The install is redone when this changes: the project metadata, the build hook, and the
sources mypyc compiles into extensions (an editable install does not rebuild those by itself).
"""

import ast
import hashlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compiled_sources() -> list[Path]:
    """The ``rpc`` modules named in ``COMPILED_MODULES`` of ``rpc/_accel.py``."""
    for node in ast.parse((ROOT / "rpc" / "_accel.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "COMPILED_MODULES":
            assert node.value is not None
            return [ROOT / "rpc" / f"{name}.py" for name in ast.literal_eval(node.value)]
    return []


def main() -> None:
    """Print the hex digest."""
    digest = hashlib.sha256(os.environ.get("UDPRPC_PURE_PYTHON", "").encode())
    for path in [ROOT / "pyproject.toml", ROOT / "setup.py", *compiled_sources()]:
        digest.update(path.read_bytes())
    print(digest.hexdigest())


if __name__ == "__main__":
    main()
