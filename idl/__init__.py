"""The IDL language: parse `.idl` text and check it into a resolved schema model."""

from idl.checker import CheckResult, check, check_files
from idl.diagnostics import Diagnostic, render_all
from idl.loader import LoadResult, load
from idl.parser import ParseResult, parse

__all__ = [
    "CheckResult",
    "Diagnostic",
    "LoadResult",
    "ParseResult",
    "check",
    "check_files",
    "load",
    "parse",
    "render_all",
]
