"""HashIndex: the numpy index behind the header store, on both of its paths
(packed keys, and 64-bit keys with an argsort beyond 16 M records), with
hashes that share their key bytes, duplicates, and records added later."""

from __future__ import annotations

import os

import numpy as np
import pytest

from peerpool.bitcoin.header_store import hash_index
from peerpool.bitcoin.header_store.hash_index import HashIndex


@pytest.mark.parametrize("path", ["packed", "argsort"])
def test_lookups_with_shared_key_bytes(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    if path == "argsort":
        monkeypatch.setattr(hash_index, "_REC_MASK", 0)  # as if the store were huge
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 256, size=(5000, 32), dtype=np.uint8)
    rows[1000:1010, :8] = rows[999, :8]  # ten hashes share their first 8 bytes with another
    rows[2000:2003, 3:8] = rows[1999, 3:8]  # and some share only the 40 bits packed
    hashes = [bytes(r) for r in rows]
    index = HashIndex(hashes.__getitem__)
    assert index.build(rows)
    for rec in (0, 999, 1000, 1005, 1009, 1999, 2001, 4999):
        assert index.get(hashes[rec]) == rec
    missing = bytearray(hashes[1000])
    missing[31] ^= 1
    assert index.get(bytes(missing)) is None and os.urandom(32) not in index
    new = os.urandom(32)
    hashes.append(new)
    index.add([new], 5000)
    assert index.get(new) == 5000 and index.get(hashes[7]) == 7


def test_a_duplicate_hash_is_reported() -> None:
    rows = np.random.default_rng(6).integers(0, 256, size=(100, 32), dtype=np.uint8)
    rows[70] = rows[20]
    index = HashIndex(lambda rec: bytes(rows[rec]))
    assert not index.build(rows)
    assert index.get(bytes(rows[20])) is None  # nothing was indexed
