"""Reading blocks from files: Bitcoin Core's ``blkNNNNN.dat`` layout (each block
preceded by the 4-byte network magic and a little-endian uint32 length) or a
single raw block. Files are memory-mapped, and blocks are yielded as
``memoryview`` slices of the map, so a large file is never read into memory whole.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peerpool.errors import BlockFormatError

#: Magic bytes that may start a record of a blk file (all networks we know).
KNOWN_MAGICS = frozenset(
    bytes.fromhex(m)
    for m in (
        "f9beb4d9",  # BTC mainnet
        "0b110907",  # BTC testnet3
        "0a03cf40",  # BTC signet
        "fabfb5da",  # BTC regtest
        "e3e1f3e8",  # BSV mainnet
        "f4e5f3f4",  # BSV testnet
        "fbcec4f9",  # BSV STN
        "dab5bffa",  # BSV regtest
    )
)


@dataclass(frozen=True)
class BlockRecord:
    path: Path
    offset: int  # where the block starts in the file
    data: memoryview


def _looks_like_blk_file(head: bytes) -> bool:
    return len(head) >= 8 and head[:4] in KNOWN_MAGICS


def iter_blocks(path: str | Path) -> Iterator[BlockRecord]:
    """Yield every block of a blk file, or the one block of a raw block file."""
    path = Path(path)
    if path.stat().st_size == 0:
        return
    with path.open("rb") as f:
        # No `with` for the map: the views we yield keep it alive, and it is
        # unmapped when the last of them is gone (closing it under a live view
        # would raise BufferError).
        view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    size = len(view)
    if not _looks_like_blk_file(bytes(view[:8])):
        yield BlockRecord(path, 0, view)
        return
    pos = 0
    while pos < size:
        if size - pos < 8:
            raise BlockFormatError(f"{path}: truncated record header", pos)
        magic = bytes(view[pos : pos + 4])
        if magic == b"\0\0\0\0":  # Core pre-allocates blk files with zeros
            return
        if magic not in KNOWN_MAGICS:
            raise BlockFormatError(f"{path}: unknown magic {magic.hex()}", pos)
        (length,) = struct.unpack_from("<I", view, pos + 4)
        start = pos + 8
        if start + length > size:
            raise BlockFormatError(
                f"{path}: block of {length} bytes runs past the end of the file", pos
            )
        yield BlockRecord(path, start, view[start : start + length])
        pos = start + length
