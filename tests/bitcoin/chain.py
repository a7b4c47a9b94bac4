"""Synthetic header chains that pass proof of work on regtest (bits 0x207fffff:
about one hash in two meets the target, so grinding is cheap)."""

from __future__ import annotations

import hashlib
import struct

REGTEST_BITS = 0x207FFFFF
REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def mine_header(prev_hash: bytes, time: int, bits: int = REGTEST_BITS, tag: int = 0) -> bytes:
    """A header on `prev_hash` whose hash meets its target; `tag` varies the
    merkle root so that sibling branches differ."""
    root = hashlib.sha256(prev_hash + struct.pack("<I", tag)).digest()
    target = (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))
    for nonce in range(1 << 32):
        header = struct.pack("<i32s32sIII", 4, prev_hash, root, time, bits, nonce)
        if int.from_bytes(_sha256d(header), "little") <= target:
            return header
    raise AssertionError("no nonce found")


def mine_chain(
    prev_header: bytes, n: int, *, tag: int = 0, start_time: int = 1_700_000_000
) -> bytes:
    """`n` headers extending `prev_header`, concatenated."""
    out = []
    prev = _sha256d(prev_header)
    for i in range(n):
        h = mine_header(prev, start_time + i, tag=tag)
        out.append(h)
        prev = _sha256d(h)
    return b"".join(out)
