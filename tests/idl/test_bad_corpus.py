"""The corpus of broken IDL files: each must give exactly the diagnostics in its .expected file.

Regenerate the .expected files with ``python -m codegen.regen_golden`` and review the diff.
"""

from __future__ import annotations

import os

import pytest

from codegen.regen_golden import bad_inputs, diagnose


def test_corpus_is_not_empty() -> None:
    assert len(bad_inputs()) >= 25


@pytest.mark.parametrize("path", bad_inputs(), ids=os.path.basename)
def test_broken_file_gives_exactly_the_expected_diagnostics(path: str) -> None:
    with open(path.removesuffix(".idl") + ".expected", encoding="utf-8") as handle:
        expected = handle.read()
    actual = diagnose(path)
    assert actual == expected
    assert ": error: " in actual
