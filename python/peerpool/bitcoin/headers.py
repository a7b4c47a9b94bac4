"""Block headers: fields, hashes, compact targets, proof of work, batch checks.

Hashing and the batch check are Rust kernels (GIL released); targets cross the
boundary as 32 big-endian bytes and become Python ints here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from peerpool import _core
from peerpool.errors import HeaderError

HEADER_LEN = 80

hash_header = _core.hash_header
hash_headers = _core.hash_headers


def bits_to_target(bits: int) -> int:
    """The target that compact ``bits`` encode (Core's ``SetCompact``); raises
    :class:`HeaderError` for negative, overflowing or zero encodings."""
    if not 0 <= bits <= 0xFFFF_FFFF:
        raise HeaderError(f"compact bits out of range: {bits}")
    return int.from_bytes(_core.bits_to_target_bytes(bits), "big")


def target_to_bits(target: int) -> int:
    """The compact encoding of ``target`` (Core's ``GetCompact``, rounded down)."""
    if not 0 <= target < 1 << 256:
        raise HeaderError(f"target {target} is not a 256-bit unsigned integer")
    return _core.target_bytes_to_bits(target.to_bytes(32, "big"))


def work_of_bits(bits: int) -> int:
    """Expected number of hashes for a header at this target: 2**256 / (target+1),
    the quantity summed to pick the best chain (Core's ``GetBlockProof``)."""
    return (1 << 256) // (bits_to_target(bits) + 1)


def _limit_bytes(pow_limit: int | None) -> bytes | None:
    if pow_limit is None:
        return None
    if not 0 <= pow_limit < 1 << 256:
        raise HeaderError(f"pow_limit {pow_limit} is not a 256-bit unsigned integer")
    return pow_limit.to_bytes(32, "big")


def check_pow(header: bytes, pow_limit: int | None = None) -> None:
    """Raise :class:`HeaderError` unless the header's hash meets its own target
    and that target is no easier than ``pow_limit``."""
    _core.check_pow(header, _limit_bytes(pow_limit))


@dataclass(frozen=True)
class BatchCheck:
    """Result of :func:`check_headers`: every header's hash (an (n, 32) uint8
    array) and, if one failed, its index, a reason code and a message."""

    hashes: np.ndarray
    failed_index: int | None
    reason: str | None
    message: str | None

    @property
    def ok(self) -> bool:
        return self.failed_index is None


def check_headers(
    headers: bytes, prev_hash: bytes | None = None, pow_limit: int | None = None
) -> BatchCheck:
    """Check linkage (each header's previous-hash is the hash of the one before,
    the first one's is ``prev_hash`` if given) and proof of work of a buffer of
    consecutive 80-byte headers in one call."""
    # checked here so that a bad argument is a HeaderError like a bad header,
    # not the kernel's plain ValueError
    if prev_hash is not None and len(prev_hash) != 32:
        raise HeaderError(f"prev_hash must be 32 bytes, not {len(prev_hash)}")
    hashes, index, reason, message = _core.check_headers(
        headers, prev_hash, _limit_bytes(pow_limit)
    )
    return BatchCheck(hashes, index, reason, message)


@dataclass(frozen=True)
class BlockHeader:
    """The six fields of an 80-byte header."""

    version: int
    prev_hash: bytes
    merkle_root: bytes
    timestamp: int
    bits: int
    nonce: int

    @classmethod
    def parse(cls, raw: bytes) -> BlockHeader:
        """The fields of an 80-byte header (no check of its proof of work).

        Raises:
            peerpool.errors.HeaderError: ``raw`` is not 80 bytes.
        """
        if len(raw) != HEADER_LEN:
            raise HeaderError(f"a header is 80 bytes, not {len(raw)}")
        version, prev, root, timestamp, bits, nonce = struct.unpack("<i32s32sIII", raw)
        return cls(version, prev, root, timestamp, bits, nonce)

    def serialize(self) -> bytes:
        """The 80-byte wire form of the header (``BlockHeader.parse(h.serialize()) == h``)."""
        return struct.pack(
            "<i32s32sIII",
            self.version,
            self.prev_hash,
            self.merkle_root,
            self.timestamp,
            self.bits,
            self.nonce,
        )


__all__ = [
    "HEADER_LEN",
    "BatchCheck",
    "BlockHeader",
    "bits_to_target",
    "check_headers",
    "check_pow",
    "hash_header",
    "hash_headers",
    "target_to_bits",
    "work_of_bits",
]
