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
        4   CRC-32 of the n * 112 bytes that follow
        4   CRC-32 of the 8 bytes above
        n * 80 bytes: consecutive headers, each the parent of the next; the
        first one's parent is an earlier header (the first batch is genesis alone)
        n * 32 bytes: their hashes (so that reopening hashes nothing)

Why CRC-32 and not a hash: the checksum guards against a flipped bit or a torn
write on our own disk, not against an adversary who can write the file (who
could recompute any hash too). zlib's CRC-32 runs at memory speed, so reopening
a store costs little more than reading it, and records that pass it are not
checked again, neither hashed nor checked for proof of work: that was done
before they were written.

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

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from peerpool.bitcoin.headers import HEADER_LEN, hash_headers
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
#: Bytes per header in a batch: the header, then (after all headers) its hash.
RECORD_LEN = HEADER_LEN + 32
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


def encode_batch(raw: bytes | memoryview, hashes: bytes | None = None) -> bytes:
    """The batch for ``raw`` (consecutive 80-byte headers) and their 32-byte
    ``hashes`` back to back (computed when not given)."""
    if hashes is None:
        hashes = hash_headers(bytes(raw)).tobytes()
    body = bytes(raw) + hashes
    head = struct.pack("<II", len(raw) // HEADER_LEN, crc(body))
    return head + struct.pack("<I", crc(head)) + body


@dataclass
class Scan:
    """What a file holds: its headers and their hashes back to back (read
    straight into these buffers, so the file is copied once), how many each
    batch holds, and how much of the file is good (a torn tail after it is to
    be cut, ``torn`` says why)."""

    raw: bytearray = field(default_factory=bytearray)
    hashes: bytearray = field(default_factory=bytearray)
    counts: list[int] = field(default_factory=list)
    good_end: int = 0
    torn: str | None = None


def scan(f: io.BufferedReader, network: Network, path: Path) -> Scan:
    """Read the file header and every batch, checking their checksums; raise on damage."""
    size = os.fstat(f.fileno()).st_size
    expected = encode_file_header(network)
    start = f.read(max(FILE_HEADER_LEN, HEADER_LEN))
    if size < FILE_HEADER_LEN:
        if start == expected[:size]:
            # created, then killed before the header was all written (or empty)
            return Scan(torn=f"a torn file header ({size} bytes)" if size else None)
        _foreign(start, network, path)
    if start[:8] != FILE_MAGIC:
        _foreign(start, network, path)
    _check_file_header(memoryview(start)[:FILE_HEADER_LEN], expected, network, path)
    # room for as many records as the file could hold (pages are only touched when read into)
    most = (size - FILE_HEADER_LEN) // RECORD_LEN + 1
    result = Scan(raw=bytearray(most * HEADER_LEN), hashes=bytearray(most * 32))
    result.good_end = pos = FILE_HEADER_LEN
    f.seek(pos)
    n = 0
    while pos < size:
        got = _next_batch(f, pos, size, result, n, path)
        if isinstance(got, str):
            result.torn = got
            break
        if not result.counts:
            _check_genesis(bytes(result.raw[: HEADER_LEN * got]), network, path, pos)
        result.counts.append(got)
        n += got
        pos = result.good_end = pos + BATCH_HEADER_LEN + got * RECORD_LEN
    del result.raw[n * HEADER_LEN :]
    del result.hashes[n * 32 :]
    return result


def _next_batch(
    f: io.BufferedReader, pos: int, size: int, into: Scan, n: int, path: Path
) -> int | str:
    """Read the batch at ``pos`` into ``into``'s buffers after its first ``n``
    records; returns its count, or why the tail is torn."""
    left = size - pos
    if left < BATCH_HEADER_LEN:
        return f"a torn batch header ({left} of {BATCH_HEADER_LEN} bytes) at offset {pos}"
    head = f.read(BATCH_HEADER_LEN)
    count, data_crc, head_crc = _BATCH_HEADER.unpack(head)
    if crc(head[:8]) != head_crc:
        if not any(head) and not any(f.read()):
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
    end = start + count * RECORD_LEN
    if end > size:
        return f"a torn batch at offset {pos} ({size - start} of {end - start} bytes)"
    with memoryview(into.raw) as raw, memoryview(into.hashes) as hashes:
        headers = raw[n * HEADER_LEN : (n + count) * HEADER_LEN]
        ids = hashes[n * 32 : (n + count) * 32]
        if f.readinto(headers) != len(headers) or f.readinto(ids) != len(ids):
            return f"a batch at offset {pos} that shrank while it was read"
        good = zlib.crc32(ids, zlib.crc32(headers)) & 0xFFFF_FFFF == data_crc
        headers.release()
        ids.release()
    if not good:
        if end == size and into.counts:
            # the last write of the file, cut short of the disk by a power loss
            return f"the last batch at offset {pos} fails its checksum"
        raise HeaderStoreCorruptError(
            f"{path}: the {count} headers at offset {start} fail their checksum "
            f"({size - end} bytes follow); the file was left as it is",
            offset=start,
        )
    return int(count)  # struct.unpack's values are Any to a type checker


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


def _check_genesis(raw: bytes, network: Network, path: Path, pos: int) -> None:
    if bytes(raw) != network.genesis_header:
        raise HeaderStoreCorruptError(
            f"{path}: the first batch is not {network.name}'s genesis header", offset=pos
        )


def _foreign(head: bytes | memoryview, network: Network, path: Path) -> None:
    start = bytes(head[:HEADER_LEN])
    # BSV kept Bitcoin's genesis blocks: one genesis can name two networks
    names = [other.name for other in NETWORKS.values() if start == other.genesis_header]
    if names:
        raise HeaderStoreMigrationError(
            f"{path}: a header store in the old format (bare 80-byte records, "
            f"starting with the genesis of {' or '.join(names)}): convert it with "
            f"peerpool.bitcoin.header_store.migrate.migrate_v1(path, {network.name!r}), "
            "which keeps the old file beside the new one"
        )
    raise HeaderStoreFormatError(
        f"{path}: not a peerpool header store (it starts with {start[:16]!r}); "
        f"opened as {network.name}, it was left as it is"
    )
