"""The header store's file format (version 2): what is on disk and how damage is told
from a torn tail. The index is :mod:`peerpool.bitcoin.header_store`'s job.

Layout (little-endian)::

    file header, 68 bytes, written once with the genesis batch:
        8   b"PPHDRS\\r\\n"      (the CR LF catches a text-mode copy, as PNG's does)
        4   format version (2)
        16  network name, NUL-padded ASCII ("btc-mainnet", ...)
        4   the network's P2P magic
        32  the network's genesis hash
        4   CRC-32 of the 64 bytes above
    then batches, one per ``connect()`` that added headers:
        4   count (n >= 1)
        4   CRC-32 of the n * 80 header bytes
        4   CRC-32 of the 8 bytes above
        n * 80 bytes: consecutive headers, each the parent of the next; the
        first one's parent is an earlier header (the first batch is genesis alone)

Why CRC-32 and not a hash: the checksum guards against a flipped bit or a torn
write on our own disk, not against an adversary who can write the file (who
could recompute any hash too). zlib's CRC-32 runs at memory speed, so reopening
a store costs little more than reading it, and records that pass it are not
checked for proof of work again: they were checked before they were written.

What a crash can do is tear the last write: the file ends inside a batch
header, inside a batch's headers, or (after a power loss) in a last batch whose
bytes did not all reach the disk, or in zeros. Exactly those are cut, with a
warning. Anything else that fails, a batch header or data whose checksum fails
with more of the file after it, a bad file header, a genesis batch that does not
match, raises :class:`~peerpool.errors.HeaderStoreCorruptError` and the file is
left as it is for the operator (or a backup) to look at. Files that are not
stores (text, JSON, another network's store, a future version) raise
:class:`~peerpool.errors.HeaderStoreFormatError`; files of the old format (bare
80-byte records from genesis) raise :class:`~peerpool.errors.HeaderStoreMigrationError`,
never a silent truncation.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from peerpool.bitcoin.headers import HEADER_LEN
from peerpool.bitcoin.networks import NETWORKS, Network
from peerpool.errors import (
    HeaderStoreCorruptError,
    HeaderStoreFormatError,
    HeaderStoreMigrationError,
)

FILE_MAGIC = b"PPHDRS\r\n"
FORMAT_VERSION = 2
_FILE_HEADER = struct.Struct("<8sI16s4s32s")
FILE_HEADER_LEN = _FILE_HEADER.size + 4
_BATCH_HEADER = struct.Struct("<III")
BATCH_HEADER_LEN = _BATCH_HEADER.size
#: A batch's count is a u32; a `headers` message carries at most 2,000, and a
#: batch bigger than this cannot be one we wrote (checked before allocating).
MAX_BATCH = 1 << 24


def crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFF_FFFF


def encode_file_header(network: Network) -> bytes:
    body = _FILE_HEADER.pack(
        FILE_MAGIC,
        FORMAT_VERSION,
        network.name.encode("ascii"),
        network.magic,
        network.genesis_hash,
    )
    return body + struct.pack("<I", crc(body))


def encode_batch(raw: bytes | memoryview) -> bytes:
    """The batch header for ``raw`` (consecutive 80-byte headers), then ``raw``."""
    head = struct.pack("<II", len(raw) // HEADER_LEN, crc(raw))
    return head + struct.pack("<I", crc(head)) + bytes(raw)


@dataclass
class Scan:
    """What a file holds: where each batch's headers are, and how much of the
    file is good (a torn tail after it is to be cut, ``torn`` says why)."""

    batches: list[tuple[int, int]] = field(default_factory=list)  # (offset, count)
    good_end: int = 0
    torn: str | None = None


def scan(data: memoryview, network: Network, path: Path) -> Scan:
    """Check the file header and every batch's checksums; raise on damage."""
    size = len(data)
    expected = encode_file_header(network)
    if size < FILE_HEADER_LEN:
        if bytes(data) == expected[:size]:
            # created, then killed before the header was all written (or empty)
            return Scan(torn=f"a torn file header ({size} bytes)" if size else None)
        _foreign(data, network, path)
    if data[:8] != FILE_MAGIC:
        _foreign(data, network, path)
    _check_file_header(data[:FILE_HEADER_LEN], expected, network, path)
    result = Scan(good_end=FILE_HEADER_LEN)
    pos = FILE_HEADER_LEN
    while pos < size:
        torn = _next_batch(data, pos, first=not result.batches, path=path)
        if isinstance(torn, str):
            result.torn = torn
            break
        offset, count = torn
        if not result.batches:
            _check_genesis(data[offset : offset + count * HEADER_LEN], network, path, pos)
        result.batches.append(torn)
        pos = result.good_end = offset + count * HEADER_LEN
    return result


def _next_batch(data: memoryview, pos: int, *, first: bool, path: Path) -> tuple[int, int] | str:
    """The batch at ``pos`` as (offset of its headers, count), or why the tail is torn."""
    size = len(data)
    left = size - pos
    if left < BATCH_HEADER_LEN:
        return f"a torn batch header ({left} of {BATCH_HEADER_LEN} bytes) at offset {pos}"
    head = data[pos : pos + BATCH_HEADER_LEN]
    count, data_crc, head_crc = _BATCH_HEADER.unpack(head)
    if crc(head[:8]) != head_crc:
        if not any(data[pos:]):
            return f"{left} zero bytes at offset {pos} (a write that did not reach the disk)"
        raise HeaderStoreCorruptError(
            f"{path}: the batch header at offset {pos} fails its checksum "
            f"({left - BATCH_HEADER_LEN} bytes follow); the file was left as it is",
            offset=pos,
        )
    if not 1 <= count <= MAX_BATCH:
        raise HeaderStoreCorruptError(
            f"{path}: the batch at offset {pos} announces {count} headers", offset=pos
        )
    start = pos + BATCH_HEADER_LEN
    end = start + count * HEADER_LEN
    if end > size:
        return f"a torn batch at offset {pos} ({size - start} of {end - start} bytes)"
    if crc(data[start:end]) != data_crc:
        if end == size and not first:
            # the last write of the file, cut short of the disk by a power loss
            return f"the last batch at offset {pos} fails its checksum"
        raise HeaderStoreCorruptError(
            f"{path}: the {count} headers at offset {start} fail their checksum "
            f"({size - end} bytes follow); the file was left as it is",
            offset=start,
        )
    return start, count


def _check_file_header(head: memoryview, expected: bytes, network: Network, path: Path) -> None:
    body = head[: FILE_HEADER_LEN - 4]
    (stored_crc,) = struct.unpack("<I", head[FILE_HEADER_LEN - 4 :])
    if crc(body) != stored_crc:
        raise HeaderStoreCorruptError(
            f"{path}: the file header fails its checksum; the file was left as it is", offset=0
        )
    _, version, name, magic, genesis = _FILE_HEADER.unpack(body)
    if version != FORMAT_VERSION:
        raise HeaderStoreFormatError(
            f"{path}: header store format version {version}; this peerpool reads "
            f"version {FORMAT_VERSION}"
        )
    if bytes(head) != expected:
        other = name.rstrip(b"\0").decode("ascii", "replace")
        raise HeaderStoreFormatError(
            f"{path}: a header store of {other} (magic {magic.hex()}, genesis "
            f"{genesis[::-1].hex()}), opened as {network.name}"
        )


def _check_genesis(raw: memoryview, network: Network, path: Path, pos: int) -> None:
    if bytes(raw) != network.genesis_header:
        raise HeaderStoreCorruptError(
            f"{path}: the first batch is not {network.name}'s genesis header", offset=pos
        )


def _foreign(head: memoryview, network: Network, path: Path) -> None:
    start = bytes(head[:HEADER_LEN])
    # BSV kept Bitcoin's genesis blocks: one genesis can name two networks
    names = [other.name for other in NETWORKS.values() if start == other.genesis_header]
    if names:
        raise HeaderStoreMigrationError(
            f"{path}: a header store in the old format (bare 80-byte records, "
            f"starting with the genesis of {' or '.join(names)}): convert it with "
            f"peerpool.bitcoin.header_migrate.migrate_v1(path, {network.name!r}), "
            "which keeps the old file beside the new one"
        )
    raise HeaderStoreFormatError(
        f"{path}: not a peerpool header store (it starts with {start[:16]!r}); "
        f"opened as {network.name}, it was left as it is"
    )
