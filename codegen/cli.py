"""The `rpcgen` command: check `.idl` files and generate one Python module per file.

Exit status: 0 on success, 1 when the input has errors (diagnostics on stderr) or an output
file cannot be written, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TextIO

import rpc
from codegen.generate import generate
from idl.checker import check_files
from idl.diagnostics import render_all

EXIT_OK = 0
EXIT_DIAGNOSTICS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `rpcgen`."""
    # argparse itself exits with status 2 (EXIT_USAGE) on usage errors.
    parser = argparse.ArgumentParser(
        prog="rpcgen",
        description="Check .idl files and generate typed Python modules from them: records, "
        "enums, constants, async and blocking clients and handler bases. Files included by "
        "the inputs are generated too (one module per file, named after the file).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE.idl", help="IDL files to compile")
    parser.add_argument("-o", "--output", metavar="OUTDIR", default=".",
                        help="directory to write the modules to (default: current directory)")
    parser.add_argument("--check", action="store_true",
                        help="only check the input files; write nothing")
    parser.add_argument("--version", action="version", version=f"rpcgen {rpc.__version__}")
    return parser


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".rpcgen-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def run(files: Sequence[str], output: str, *, check_only: bool, stderr: TextIO) -> int:
    """Check (and unless ``check_only``, generate) ``files``; returns the exit status."""
    checked = check_files(files)
    generated = generate(checked)
    if generated.diagnostics:
        print(render_all(generated.diagnostics, checked.sources), file=stderr)
        count = len(generated.diagnostics)
        print(f"rpcgen: {count} error{'s' if count != 1 else ''}", file=stderr)
        return EXIT_DIAGNOSTICS
    if check_only:
        return EXIT_OK
    try:
        os.makedirs(output, exist_ok=True)
        for module, text in generated.sources.items():
            _write_atomically(os.path.join(output, f"{module}.py"), text)
    except OSError as exc:
        print(f"rpcgen: error: cannot write to '{output}': {exc.strerror or exc}", file=stderr)
        return EXIT_DIAGNOSTICS
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `rpcgen`; returns the process exit status."""
    args = build_parser().parse_args(argv)
    return run(args.files, args.output, check_only=args.check, stderr=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
