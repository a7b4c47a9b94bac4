"""Headers: hashing, compact bits, proof of work, a batch check."""

from __future__ import annotations

import struct

from tests.reference.bitcoin.common import HEADER_LEN, Rejected, sha256d


def hash_header(header: bytes) -> bytes:
    if len(header) != HEADER_LEN:
        raise Rejected("bad-length", 0)
    return sha256d(header)


def set_compact(bits: int) -> tuple[int, bool, bool]:
    """Core's arith_uint256::SetCompact: (target, negative, overflow)."""
    size = bits >> 24
    word = bits & 0x007F_FFFF
    if size <= 3:
        word >>= 8 * (3 - size)
        target = word
    else:
        target = (word << (8 * (size - 3))) % 2**256
    negative = word != 0 and bits & 0x0080_0000 != 0
    overflow = word != 0 and (
        size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)
    )
    return target, negative, overflow


def get_compact(target: int) -> int:
    """Core's arith_uint256::GetCompact (non-negative)."""
    size = (target.bit_length() + 7) // 8
    compact = target << (8 * (3 - size)) if size <= 3 else target >> (8 * (size - 3))
    if compact & 0x0080_0000:  # the sign bit: move the mantissa down a byte
        compact >>= 8
        size += 1
    return compact | (size << 24)


def bits_problem(bits: int, pow_limit: int | None = None) -> str | None:
    """Why Core's CheckProofOfWork refuses these bits before looking at the
    hash, as the kernel's reason code; None if it does not."""
    target, negative, overflow = set_compact(bits)
    if negative:
        return "bits-negative"
    if overflow:
        return "bits-overflow"
    if target == 0:
        return "bits-zero"
    if pow_limit is not None and target > pow_limit:
        return "bits-above-pow-limit"
    return None


def check_pow(header: bytes, pow_limit: int | None = None) -> str | None:
    """None if the header's hash meets its target, else the reason."""
    (bits,) = struct.unpack_from("<I", header, 72)
    problem = bits_problem(bits, pow_limit)
    if problem:
        return problem
    if int.from_bytes(hash_header(header), "little") > set_compact(bits)[0]:
        return "high-hash"
    return None


def check_headers(
    buf: bytes, prev_hash: bytes | None = None, pow_limit: int | None = None
) -> tuple[list[bytes], int | None, str | None]:
    """(hashes, index of the first failure, reason) for consecutive headers."""
    if len(buf) % HEADER_LEN:
        raise Rejected("bad-length", len(buf))
    headers = [bytes(buf[i : i + HEADER_LEN]) for i in range(0, len(buf), HEADER_LEN)]
    hashes = [sha256d(h) for h in headers]
    expected = prev_hash
    for i, header in enumerate(headers):
        if expected is not None and header[4:36] != expected:
            return hashes, i, "prev-blk-not-found"
        problem = check_pow(header, pow_limit)
        if problem:
            return hashes, i, problem
        expected = hashes[i]
    return hashes, None, None
