"""CRC-32C: both implementations agree with published vectors and with each other."""

from __future__ import annotations

import random
import struct

import google_crc32c
import pytest

from rpc.transport import crc

# RFC 3720 (iSCSI) appendix B.4 test vectors, plus the common "123456789" check value.
VECTORS = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"", 0x00000000),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_both_implementations_match_known_vectors(data: bytes, expected: int) -> None:
    assert crc.crcmod_crc32c(data) == expected
    assert google_crc32c.value(data) == expected
    assert crc.crc32c(data) == expected


def test_implementations_agree_on_random_data_and_continuation() -> None:
    rng = random.Random(3)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 3000))
        cut = rng.randrange(0, len(data) + 1)
        whole = crc.crcmod_crc32c(data)
        assert google_crc32c.value(data) == whole
        assert crc.crc32c_extend(crc.crc32c(data[:cut]), data[cut:]) == whole
        assert crc.crcmod_crc32c(data[cut:], crc.crcmod_crc32c(data[:cut])) == whole


def test_message_followed_by_its_little_endian_crc_has_the_residue() -> None:
    rng = random.Random(4)
    for _ in range(50):
        data = rng.randbytes(rng.randrange(1, 500))
        framed = data + struct.pack("<I", crc.crc32c(data))
        assert crc.crc32c(framed) == crc.CRC32C_RESIDUE
        assert crc.crcmod_crc32c(framed) == crc.CRC32C_RESIDUE


def test_the_fast_implementation_is_used_when_installed() -> None:
    assert crc.IMPLEMENTATION == "google_crc32c"
