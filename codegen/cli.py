"""The `rpcgen` command line (placeholder until the generator lands)."""

from __future__ import annotations

import argparse
import sys

import rpc


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `rpcgen`."""
    parser = argparse.ArgumentParser(
        prog="rpcgen", description="Generate typed Python stubs from .idl files."
    )
    parser.add_argument("files", nargs="*", metavar="FILE.idl", help="IDL files to compile")
    parser.add_argument("-o", "--output", metavar="OUTDIR", default=".", help="output directory")
    parser.add_argument("--check", action="store_true", help="only validate the input files")
    parser.add_argument("--version", action="version", version=f"rpcgen {rpc.__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `rpcgen`; returns the process exit status."""
    build_parser().parse_args(argv)
    print("rpcgen: the generator is not built yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
