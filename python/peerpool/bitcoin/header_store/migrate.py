"""Convert a header store of the old format (bare 80-byte records, no file
header, no checksums) into the current one, without ever truncating the old file.

``migrate_v1(path, network)`` reads the old file, connects its records into a
new store written beside it (so every record is checked again: linkage and
proof of work, which the old format could not vouch for), then renames the old
file to ``<name>.v1`` and the new one into its place. Records from the first
one that does not check out are not carried over; they stay in the ``.v1``
file, and how many there were is returned. Run it once, with no process using
the store. Interrupted between its two renames, it leaves the old file at
``<name>.v1`` and the new one at ``<name>.v2-migrating``; nothing is lost.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.header_store.format import FILE_MAGIC
from peerpool.bitcoin.headers import HEADER_LEN, hash_headers
from peerpool.bitcoin.networks import Network, get_network
from peerpool.errors import HeaderError, HeaderStoreFormatError


@dataclass(frozen=True)
class Migration:
    carried: int  # records in the new store (genesis included)
    left_behind: int  # records of the old file not carried (damaged, or after damage)
    old_copy: Path


def migrate_v1(path: str | Path, network: Network | str) -> Migration:
    net = get_network(network) if isinstance(network, str) else network
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(FILE_MAGIC):
        raise HeaderStoreFormatError(f"{path}: already in the current format")
    if data[:HEADER_LEN] != net.genesis_header:
        raise HeaderStoreFormatError(f"{path}: not an old-format store of {net.name}")
    n = len(data) // HEADER_LEN
    old_copy = path.with_name(path.name + ".v1")
    new_path = path.with_name(path.name + ".v2-migrating")
    new_path.unlink(missing_ok=True)
    carried_records = 1
    with HeadersStore(new_path, net, fsync_interval=3600) as store:
        for start, stop in _runs(data[: n * HEADER_LEN], n):
            try:
                store.connect(data[start * HEADER_LEN : stop * HEADER_LEN])
            except HeaderError:
                break  # from here on the old file cannot be trusted
            carried_records = stop
        carried = len(store)
    os.replace(path, old_copy)
    os.replace(new_path, path)
    return Migration(carried, n - carried_records, old_copy)


def _runs(data: bytes, n: int) -> list[tuple[int, int]]:
    """Records 1..n cut into runs in which each record is the parent of the
    next (the old file wrote each connected batch as such a run)."""
    hashes = hash_headers(data)
    prevs = np.frombuffer(data, dtype=np.uint8).reshape(n, HEADER_LEN)[:, 4:36]
    links = np.all(prevs[1:] == hashes[:-1], axis=1)  # links[i]: record i+1 follows record i
    breaks = [int(i) + 1 for i in np.flatnonzero(~links) if i > 0]
    bounds = [1, *breaks, n]
    return [(a, b) for a, b in itertools.pairwise(bounds) if a < b]
