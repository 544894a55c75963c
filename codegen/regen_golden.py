"""Regenerate the golden files: ``python -m codegen.regen_golden``.

Every ``tests/golden/*.idl`` (and the calculator example) is compiled in one run, as
``rpcgen`` would, and written to ``tests/golden/expected/<module>.py``; every broken file
``tests/idl/bad/*.idl`` gets its diagnostics written to ``<name>.expected``. The tests compare
against these files byte for byte; review the diff before committing.
"""

from __future__ import annotations

import glob
import os
import sys

from codegen.generate import generate
from idl.checker import check_files
from idl.diagnostics import render_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")
EXPECTED_DIR = os.path.join(GOLDEN_DIR, "expected")
BAD_DIR = os.path.join(ROOT, "tests", "idl", "bad")
EXTRA_INPUTS = (os.path.join(ROOT, "examples", "calculator", "calculator.idl"),)


def golden_inputs() -> list[str]:
    """The IDL files the golden outputs are generated from, in a fixed order."""
    return sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.idl"))) + list(EXTRA_INPUTS)


def generate_golden() -> dict[str, str]:
    """Generated source by module name; raises ValueError if the inputs have diagnostics."""
    checked = check_files(golden_inputs())
    generated = generate(checked)
    if generated.diagnostics:
        raise ValueError(render_all(generated.diagnostics, checked.sources))
    return generated.sources


def bad_inputs() -> list[str]:
    """The broken IDL files of the diagnostics corpus."""
    return sorted(glob.glob(os.path.join(BAD_DIR, "*.idl")))


def diagnose(path: str) -> str:
    """What `rpcgen --check` prints for one file, with paths relative to its directory."""
    directory = os.path.dirname(path)

    def read(name: str) -> str:
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            return handle.read()

    checked = check_files([os.path.basename(path)], read=read)
    generated = generate(checked)
    return render_all(generated.diagnostics, checked.sources) + "\n"


def main() -> int:
    """Rewrite tests/golden/expected/ and the corpus's .expected files."""
    for path in bad_inputs():
        with open(path.removesuffix(".idl") + ".expected", "w", encoding="utf-8") as out:
            out.write(diagnose(path))
    sources = generate_golden()
    os.makedirs(EXPECTED_DIR, exist_ok=True)
    for stale in glob.glob(os.path.join(EXPECTED_DIR, "*.py")):
        if os.path.splitext(os.path.basename(stale))[0] not in sources:
            os.remove(stale)
    for module, text in sources.items():
        with open(os.path.join(EXPECTED_DIR, f"{module}.py"), "w", encoding="utf-8") as out:
            out.write(text)
    print(f"wrote {len(sources)} modules to {os.path.relpath(EXPECTED_DIR)} and "
          f"{len(bad_inputs())} .expected files to {os.path.relpath(BAD_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
