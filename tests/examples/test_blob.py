"""The blob example: multi-megabyte chunks both ways, compressed when that helps."""

from __future__ import annotations

import re

import pytest

from tests.examples.harness import example_server, run_module

pytestmark = pytest.mark.realnet


def test_blobs_round_trip_with_matching_hashes() -> None:
    with example_server("examples.blob.server") as port:
        result = run_module(
            "examples.blob.client", "--port", str(port), "--size-mib", "3", "--chunk-mib", "1.5"
        )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "all hashes match" in out
    assert out.count("matches") == 2
    assert "upload   compressible.log   [########################]   3.0 / 3.0 MiB" in out
    assert "download incompressible.bin [############............]   1.5 / 3.0 MiB" in out
    ratios = dict(re.findall(r"^(\S+): 3\.0 MiB, [\d.]+ MiB on the wire \(([\d.]+)x\)", out, re.M))
    assert float(ratios["compressible.log"]) > 10  # zstd shrank the text on the wire
    assert float(ratios["incompressible.bin"]) <= 1.0  # random bytes went as they were
