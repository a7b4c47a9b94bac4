"""``HashIndex``: block hash -> record number, for a million headers without a
million Python objects.

A dict of a million 32-byte keys costs about as much to build as everything
else of reopening a store together (one object per key, hashed, inserted).
Here the records of a store's file are indexed in one numpy sort instead: 40
bits of each hash and the record number packed into a ``uint64``, sorted,
searched with ``searchsorted`` and confirmed against the full hash (beyond
16 M records, 64-bit keys and an argsort). Records connected after that go into a
plain dict. Lookups cost a few microseconds either way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Records up to this many are indexed by one sort of packed keys (40 bits of
#: hash, 24 of record number): np.sort is several times faster than argsort.
_REC_BITS = 24
_REC_MASK = (1 << _REC_BITS) - 1


class HashIndex:
    def __init__(self, hash_of: Callable[[int], bytes]) -> None:
        self._hash_of = hash_of  # the full hash of a record, to confirm a key match
        self._sorted = np.empty(0, dtype=np.uint64)  # packed keys, or 64-bit keys
        self._recs: np.ndarray | None = None  # record of each 64-bit key (large stores)
        self._added: dict[bytes, int] = {}

    def build(self, hashes: np.ndarray) -> bool:
        """Index records 0..n-1 with these (n, 32) hashes (replacing what was
        indexed). Returns False, indexing nothing, if a hash appears twice:
        the caller then adds the records one batch at a time."""
        n = len(hashes)
        keys = np.ascontiguousarray(hashes[:, :8]).view("<u8").ravel().astype(np.uint64)
        if n <= _REC_MASK + 1:
            packed = (keys >> np.uint64(_REC_BITS) << np.uint64(_REC_BITS)) | np.arange(
                n, dtype=np.uint64
            )
            packed.sort()
            recs = (packed & np.uint64(_REC_MASK)).astype(np.int64)
            prefixes = packed >> np.uint64(_REC_BITS)
            self_recs = None
        else:
            recs = np.argsort(keys)  # ties are told apart by the full hash
            packed = prefixes = keys[recs]
            self_recs = recs
        for i in np.flatnonzero(prefixes[1:] == prefixes[:-1]).tolist():
            # a shared key: rare unless a record is there twice
            if bytes(hashes[recs[i]]) == bytes(hashes[recs[i + 1]]):
                return False
        self._sorted, self._recs = packed, self_recs
        self._added = {}
        return True

    def add(self, hashes: list[bytes], first: int) -> None:
        self._added.update(zip(hashes, range(first, first + len(hashes)), strict=True))

    def get(self, block_hash: bytes) -> int | None:
        rec = self._added.get(block_hash)
        if rec is not None or not len(self._sorted):
            return rec
        key = int.from_bytes(block_hash[:8], "little")
        keys = self._sorted
        if self._recs is None:
            prefix = key >> _REC_BITS
            i = int(np.searchsorted(keys, np.uint64(prefix << _REC_BITS)))
            while i < len(keys) and int(keys[i]) >> _REC_BITS == prefix:
                rec = int(keys[i]) & _REC_MASK
                if self._hash_of(rec) == block_hash:
                    return rec
                i += 1
            return None
        i = int(np.searchsorted(keys, np.uint64(key)))
        while i < len(keys) and int(keys[i]) == key:
            rec = int(self._recs[i])
            if self._hash_of(rec) == block_hash:
                return rec
            i += 1
        return None

    def __contains__(self, block_hash: bytes) -> bool:
        return self.get(block_hash) is not None
