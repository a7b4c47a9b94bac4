"""The two Bitcoin encodings that several protocols share: CompactSize and double SHA-256.

One Python copy of each, used by the Bitcoin message codecs and headers, the
block sink's checks, the JoinMarket signed-message hash and the regtest block
builder. The CompactSize encoder is the Rust kernel's (``peerpool._core``,
which the framing and the parsers also use), so Python and Rust cannot
disagree about the encoding.
"""

from __future__ import annotations

import hashlib

from peerpool._core import write_compact_size

__all__ = ["compact_size", "sha256d"]


def compact_size(value: int) -> bytes:
    """Encode ``value`` as a Bitcoin CompactSize (1, 3, 5 or 9 bytes, minimal).

    Args:
        value: an integer in ``0 .. 2**64 - 1``.

    Raises:
        peerpool.errors.InputError: ``value`` is negative or does not fit in 64 bits.
    """
    return bytes(write_compact_size(value))


def sha256d(data: bytes | bytearray | memoryview) -> bytes:
    """Bitcoin's double SHA-256, ``sha256(sha256(data))``: the hash of headers,
    transactions, merkle nodes and message checksums (32 bytes, internal byte order)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()
