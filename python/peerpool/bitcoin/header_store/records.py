"""``Records``: the headers of a store in memory, as runs, with their index.

A run is what one batch of the file (or one ``connect()``) added: consecutive
records, each the parent of the next. Everything a record needs is derived
from its run: its parent is the record before it (or the run's parent), its
height the run's first height plus its position, its cumulative work the
run's base work plus the work of the headers before it in the run. So the
per-record state is only the 80-byte header and the 32-byte hash; the per-run
state is a few lists as long as the number of batches. Reopening a million
headers costs a copy of the file's headers and hashes, a numpy sort
(:class:`~peerpool.bitcoin.header_store.hash_index.HashIndex`) and a few steps per
batch, not Python objects per header.

Not thread-safe by itself: :class:`~peerpool.bitcoin.header_store.HeadersStore`
holds its lock around every call.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from peerpool.bitcoin.header_store.hash_index import HashIndex
from peerpool.bitcoin.headers import HEADER_LEN, work_of_bits

_PREV = slice(4, 36)
_BITS_WORD = 18  # the header's bits field, as the 19th little-endian u32


class Records:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._raw = bytearray()  # the headers, 80 bytes each
        self._hashes = bytearray()  # their hashes, 32 bytes each
        self.index = HashIndex(self.hash)
        self.count = 0
        self._starts: list[int] = []  # first record of each run
        self._parent: list[int] = []  # parent of each run's first record (-1: genesis)
        self._height0: list[int] = []  # height of each run's first record
        self._base_work: list[int] = []  # cumulative work of each run's parent
        self._last_work: list[int] = []  # cumulative work of each run's last record
        self._work_of_bits: dict[int, int] = {}

    # --- one record ------------------------------------------------------------

    def raw_of(self, start: int, stop: int) -> bytes:
        """Headers ``start..stop-1`` back to back."""
        return bytes(self._raw[start * HEADER_LEN : stop * HEADER_LEN])

    def hashes_of(self, start: int, stop: int) -> bytes:
        return bytes(self._hashes[start * 32 : stop * 32])

    def header(self, rec: int) -> bytes:
        return self.raw_of(rec, rec + 1)

    def hash(self, rec: int) -> bytes:
        return self.hashes_of(rec, rec + 1)

    def run_of(self, rec: int) -> int:
        return bisect.bisect_right(self._starts, rec) - 1

    def run_start(self, rec: int) -> int:
        return self._starts[self.run_of(rec)]

    def parent(self, rec: int) -> int:
        run = self.run_of(rec)
        return rec - 1 if rec > self._starts[run] else self._parent[run]

    def height(self, rec: int) -> int:
        run = self.run_of(rec)
        return self._height0[run] + rec - self._starts[run]

    def work(self, rec: int) -> int:
        run = self.run_of(rec)
        end = self._starts[run + 1] if run + 1 < len(self._starts) else self.count
        if rec == end - 1:
            return self._last_work[run]
        return self._base_work[run] + self._bits_sum(_bits(self.raw_of(self._starts[run], rec + 1)))

    def run_tips(self) -> list[int]:
        """The last record of each run, in order (the candidates for most work:
        within a run work grows)."""
        return [*(s - 1 for s in self._starts[1:]), self.count - 1] if self.count else []

    def last_works(self) -> Sequence[int]:
        return self._last_work

    def run_parents(self) -> Sequence[int]:
        """The parent record of each run's first record (-1 for genesis's run)."""
        return self._parent

    # --- adding -----------------------------------------------------------------

    def _bits_work(self, bits: int) -> int:
        work = self._work_of_bits.get(bits)
        if work is None:
            work = self._work_of_bits[bits] = work_of_bits(bits)
        return work

    def _bits_sum(self, bits: np.ndarray) -> int:
        """The work of headers with these bits."""
        if not len(bits):
            return 0
        if bits.min() == bits.max():  # the usual case: one retarget period
            return self._bits_work(int(bits[0])) * len(bits)
        distinct, counts = np.unique(bits, return_counts=True)
        return sum(
            self._bits_work(b) * c for b, c in zip(distinct.tolist(), counts.tolist(), strict=True)
        )

    def _new_run(self, start: int, parent: int, bits: np.ndarray) -> None:
        base = self.work(parent) if parent >= 0 else 0
        self._starts.append(start)
        self._parent.append(parent)
        self._height0.append(self.height(parent) + 1 if parent >= 0 else 0)
        self._base_work.append(base)
        self._last_work.append(base + self._bits_sum(bits))

    def append(self, raw: bytes, hashes: list[bytes], parent: int) -> int:
        """Add a run (``hashes``: its 32-byte hashes) whose first header's
        parent is record ``parent``; returns its last record."""
        start = self.count
        self._new_run(start, parent, _bits(raw))
        self._raw += raw
        self._hashes += b"".join(hashes)
        self.count += len(hashes)
        self.index.add(hashes, start)
        return self.count - 1

    def known_prefix(self, hashes: bytes) -> int:
        """How many of a linked run's hashes are stored already (a prefix)."""
        known = 0
        while known * 32 < len(hashes) and hashes[known * 32 : known * 32 + 32] in self.index:
            known += 1
        return known

    # --- loading a file -----------------------------------------------------------

    def load(self, raw: bytearray, hashes: bytearray, counts: Sequence[int]) -> None:
        """Index the records of a file: headers and hashes back to back, and
        how many each batch holds (genesis first). Their checksums vouch for
        them, so nothing is hashed or checked again (each batch was a linked
        run, checked for proof of work, when it was written), except that
        each batch's first header has an earlier record for parent. Raises
        ValueError (the caller's typed error) naming the batch that has not."""
        n = len(raw) // HEADER_LEN
        with memoryview(hashes) as view:
            if not self.index.build(np.frombuffer(view, dtype=np.uint8).reshape(n, 32)):
                self._load_one_by_one(raw, hashes, counts)  # a batch written twice
                return
        self._raw, self._hashes = raw, hashes
        with memoryview(raw) as view:
            bits = _bits(view).copy()  # a copy: the bytearray must stay free to grow
        start = 0
        for k, count in enumerate(counts):
            self.count = start  # the runs so far end here
            parent = -1
            if k:
                prev = bytes(raw[start * HEADER_LEN + 4 : start * HEADER_LEN + 36])
                if prev == self.hash(start - 1):  # the usual case: it extends the batch before
                    parent = start - 1
                else:
                    found = self.index.get(prev)
                    if found is None or found >= start:
                        raise ValueError(f"batch {k} does not connect to an earlier header")
                    parent = found
            self._new_run(start, parent, bits[start : start + count])
            start += count
        self.count = n

    def _load_one_by_one(
        self, raw: bytes | bytearray, hashes: bytes | bytearray, counts: Sequence[int]
    ) -> None:
        self._reset()  # start again, with the dict part of the index only
        start = 0
        for k, count in enumerate(counts):
            batch = bytes(raw[start * HEADER_LEN : (start + count) * HEADER_LEN])
            ids = bytes(hashes[start * 32 : (start + count) * 32])
            start += count
            known = self.known_prefix(ids)
            if known == count:
                continue  # all stored before: counted once
            first = batch[known * HEADER_LEN :]
            if known:
                parent = self.index.get(ids[known * 32 - 32 : known * 32])
            elif k:
                parent = self.index.get(first[_PREV])
            else:
                parent = -1
            if parent is None:
                raise ValueError(f"batch {k} does not connect to an earlier header")
            self.append(first, split_hashes(ids[known * 32 :]), parent)

    def hashes_for(self, recs: np.ndarray) -> bytes:
        """The hashes of these records (an int64 array), back to back."""
        with memoryview(self._hashes) as view:  # released: the bytearray may grow again
            hashes: bytes = np.frombuffer(view, dtype=np.uint8).reshape(-1, 32)[recs].tobytes()
            return hashes


def _bits(raw: bytes | memoryview) -> np.ndarray:
    n = len(raw) // HEADER_LEN
    return np.frombuffer(raw, dtype="<u4", count=n * 20).reshape(n, 20)[:, _BITS_WORD]


def split_hashes(hashes: bytes) -> list[bytes]:
    """32-byte hashes back to back, as a list."""
    return [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
