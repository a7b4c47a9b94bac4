"""CompactSize read and write, as Bitcoin Core's serialize.h."""

from __future__ import annotations

from tests.reference.bitcoin.common import MAX_U64, Rejected

# marker byte -> (width of the integer after it, smallest value it may encode)
_WIDE = {0xFD: (2, 0xFD), 0xFE: (4, 0x1_0000), 0xFF: (8, 0x1_0000_0000)}


def write_compact_size(value: int) -> bytes:
    if not 0 <= value <= MAX_U64:
        raise ValueError(f"{value} is not a u64")
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "little")
    if value <= 0xFFFF_FFFF:
        return b"\xfe" + value.to_bytes(4, "little")
    return b"\xff" + value.to_bytes(8, "little")


def read_compact_size(data: bytes, offset: int = 0, limit: int = MAX_U64) -> tuple[int, int]:
    """(value, encoded length) of the CompactSize at ``offset``."""
    if offset >= len(data):
        raise Rejected("truncated", offset)
    first = data[offset]
    if first < 0xFD:
        value, size = first, 1
    else:
        width, smallest = _WIDE[first]
        if offset + 1 + width > len(data):
            raise Rejected("truncated", offset)
        value = int.from_bytes(data[offset + 1 : offset + 1 + width], "little")
        if value < smallest:
            raise Rejected("non-minimal", offset)
        size = 1 + width
    if value > limit:
        raise Rejected("too-large", offset)
    return value, size
