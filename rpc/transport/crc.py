"""CRC-32C (Castagnoli), the checksum that protects every datagram.

``google_crc32c`` (hardware accelerated) is used when importable; ``crcmod`` is the portable
implementation. Both compute the same function, which ``tests/transport/test_crc.py`` proves
with known vectors.

The datagram CRC is stored little-endian after the covered bytes, so the CRC of the whole
datagram (covered bytes + stored CRC) is the constant :data:`CRC32C_RESIDUE`. Verifying that way
needs no copy of the datagram (google_crc32c accepts only ``bytes``, not memoryview slices).
"""

from __future__ import annotations

from collections.abc import Callable

import crcmod.predefined

#: CRC-32C of any message followed by its own CRC in little-endian order (RFC 3385 / iSCSI check
#: residue 0xB798B438, after the final XOR with 0xFFFFFFFF).
CRC32C_RESIDUE = 0x48674BC7

#: The portable implementation: ``crcmod_crc32c(data, crc=0)`` continues from ``crc``.
crcmod_crc32c: Callable[..., int] = crcmod.predefined.mkPredefinedCrcFun("crc-32c")


def _crcmod_extend(crc: int, data: bytes) -> int:
    return int(crcmod_crc32c(data, crc))


def _crcmod_value(data: bytes) -> int:
    return int(crcmod_crc32c(data))


crc32c_extend: Callable[[int, bytes], int]
crc32c: Callable[[bytes], int]

try:
    import google_crc32c

    if google_crc32c.implementation != "c":  # its pure-Python fallback is slower than crcmod
        raise ImportError("google_crc32c without its C extension")  # noqa: TRY301
    crc32c = google_crc32c.value
    crc32c_extend = google_crc32c.extend
    IMPLEMENTATION = "google_crc32c"
except ImportError:  # pragma: no cover - depends on the installation
    crc32c = _crcmod_value
    crc32c_extend = _crcmod_extend
    IMPLEMENTATION = "crcmod"

__all__ = ["CRC32C_RESIDUE", "IMPLEMENTATION", "crc32c", "crc32c_extend", "crcmod_crc32c"]
