"""``HeadersStore``: every header seen, every branch, the best chain by work.

On disk (format in :mod:`peerpool.bitcoin.header_format`) a file header names
the format version and the network; then one checksummed batch per
``connect()`` that added headers, in the order they were connected (a header
always after its parent). The index (hash -> record, parent, height,
cumulative work, best chain by height) is rebuilt on open from the batches
alone: a batch that passes its checksum was checked (linkage, proof of work)
before it was written, so it is not checked again, and each batch costs one
dict lookup for its parent and bulk operations for its headers, so reopening
is linear in the records however many forks there are. A torn tail (the last
write cut by a crash) is truncated with a warning; any other damage, a
foreign file or another network's store raises a
:class:`~peerpool.errors.HeaderStoreError` and leaves the file as it is.
Headers stored twice (a batch appended again) are indexed once.

Writes go to the OS after every batch (so a killed process loses nothing it
connected) and are fsynced at most every ``fsync_interval`` seconds and on close.

Checks: linkage and proof of work against each header's own bits and the
network's proof-of-work limit. Difficulty-adjustment rules (that bits are the
ones the retarget algorithm demands: Bitcoin's 2016-block retarget, BSV's
DAA) are out of scope: a peer could feed a branch of easy but valid-looking
headers, and chain selection by work is only as good as those bits. Indexers
that need that guarantee should compare with a trusted node's tip.

All methods are safe to call from several threads.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peerpool.bitcoin import header_format as fmt
from peerpool.bitcoin.blocks import hash_hex
from peerpool.bitcoin.headers import HEADER_LEN, check_headers, hash_headers, work_of_bits
from peerpool.bitcoin.networks import Network, get_network
from peerpool.errors import (
    BadHeaderError,
    HeaderError,
    HeaderStoreCorruptError,
    HeaderStoreFormatError,
    OrphanHeadersError,
)

log = logging.getLogger("peerpool.bitcoin")

_PREV = slice(4, 36)


@dataclass(frozen=True)
class Tip:
    height: int
    hash: bytes  # internal byte order
    chainwork: int

    @property
    def hash_hex(self) -> str:
        return hash_hex(self.hash)


@dataclass(frozen=True)
class Reorg:
    """The best chain moved to another branch. Hash lists run upwards from the
    common ancestor: ``disconnected`` ends with the old tip, ``connected`` with
    the new one."""

    old_tip: Tip
    new_tip: Tip
    common_ancestor: Tip
    disconnected: list[bytes]
    connected: list[bytes]


@dataclass(frozen=True)
class ConnectResult:
    tip: Tip
    added: int
    tip_changed: bool
    reorg: Reorg | None = None
    new_best: list[bytes] = field(
        default_factory=list
    )  # hashes that joined the best chain, upwards


class HeadersStore:
    def __init__(
        self, path: str | Path, network: Network | str, *, fsync_interval: float = 1.0
    ) -> None:
        self.network = get_network(network) if isinstance(network, str) else network
        self.path = Path(path)
        self._lock = threading.RLock()
        self._fsync_interval = fsync_interval
        self._last_fsync = time.monotonic()
        self._raw = bytearray()  # all records, 80 bytes each
        self._index: dict[bytes, int] = {}  # hash -> record number
        self._hashes: list[bytes] = []
        self._parent: list[int] = []
        self._height: list[int] = []
        self._work: list[int] = []
        # record numbers where a run of linked records begins (each record of
        # a run is the parent of the next): walks go run by run, not record by record
        self._run_starts: list[int] = []
        self._best: list[int] = []  # record number of the best chain at each height
        self._work_of_bits: dict[int, int] = {}
        self._best_candidate = -1  # most work seen while loading; first among equals
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = self._load()  # bytes of the file that are good
        # unbuffered: a write that fails is cut off again (see _write)
        self._file = self.path.open("ab", buffering=0)
        if not self._hashes:
            genesis = self.network.genesis_header
            start = b"" if self._size else fmt.encode_file_header(self.network)
            self._write(start + fmt.encode_batch(genesis), sync=True)
            self._append_records(genesis, [self.network.genesis_hash], -1)
            self._best_candidate = 0
        # The best chain: most work; among equals the first seen (as Core does).
        self._move_best(self._best_candidate)

    # --- opening --------------------------------------------------------------

    def _load(self) -> int:
        """Index the file; returns its size once a torn tail is cut."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return 0
        if not stat.S_ISREG(mode):
            raise HeaderStoreFormatError(f"{self.path}: not a regular file")
        data = self.path.read_bytes()
        found = fmt.scan(memoryview(data), self.network, self.path)
        if found.torn is not None:
            log.warning("%s: cutting %s", self.path, found.torn)
            with self.path.open("r+b") as f:  # drop the torn tail (of the last write)
                f.truncate(found.good_end)
                f.flush()
                os.fsync(f.fileno())
        view = memoryview(data)
        for offset, count in found.batches:
            self._load_batch(view[offset : offset + count * HEADER_LEN], count, offset)
        return found.good_end

    def _load_batch(self, batch: memoryview, count: int, offset: int) -> None:
        """Index one batch that passed its checksum (no proof-of-work check:
        it was checked before it was written)."""
        raw = bytes(batch)
        hashes = hash_headers(raw)
        # cheap insurance against a bug of ours: the batch is one linked run
        prevs = np.frombuffer(raw, dtype=np.uint8).reshape(count, HEADER_LEN)[1:, _PREV]
        if count > 1 and not np.array_equal(prevs, hashes[:-1]):
            raise HeaderStoreCorruptError(
                f"{self.path}: the batch at offset {offset} is not a linked run of headers",
                offset=offset,
            )
        flat = hashes.tobytes()
        new = [flat[i : i + 32] for i in range(0, count * 32, 32)]
        known = 0  # a linked run: headers stored before (a batch written twice) are a prefix
        while known < count and new[known] in self._index:
            known += 1
        if known == count:
            return
        if known:
            parent = self._index[new[known - 1]]
        elif self._hashes:
            found = self._index.get(raw[_PREV])
            if found is None:
                raise HeaderStoreCorruptError(
                    f"{self.path}: the batch at offset {offset} does not connect to an "
                    "earlier header",
                    offset=offset,
                )
            parent = found
        else:
            parent = -1  # genesis (the format checked that it is)
        self._append_records(raw[known * HEADER_LEN :], new[known:], parent)
        last = len(self._work) - 1
        if self._best_candidate < 0 or self._work[last] > self._work[self._best_candidate]:
            self._best_candidate = last

    # --- connecting ---------------------------------------------------------------

    def _bits_work(self, bits: int) -> int:
        work = self._work_of_bits.get(bits)
        if work is None:
            work = self._work_of_bits[bits] = work_of_bits(bits)
        return work

    def _append_records(self, raw: bytes, hashes: list[bytes], first_parent: int) -> None:
        """Index consecutive linked records (each the parent of the next).
        Caller holds the lock. Done with C-level bulk operations (dict.update,
        list.extend over ranges, itertools.accumulate for the cumulative work):
        a Python statement per header would cost more than the kernel's checks."""
        n = len(hashes)
        base = len(self._hashes)
        bits = np.frombuffer(raw, dtype="<u4", count=n * 20).reshape(n, 20)[:, 18]
        height = self._height[first_parent] + 1 if first_parent >= 0 else 0
        work = self._work[first_parent] if first_parent >= 0 else 0
        distinct = np.unique(bits)
        if len(distinct) == 1:  # the usual case: a batch within one retarget period
            works: Iterable[int] = itertools.repeat(self._bits_work(int(distinct[0])), n)
        else:
            works = map(self._bits_work, bits.tolist())
        self._index.update(zip(hashes, range(base, base + n), strict=True))
        self._run_starts.append(base)
        self._parent.append(first_parent)
        self._parent.extend(range(base, base + n - 1))
        self._height.extend(range(height, height + n))
        self._work.extend(itertools.accumulate(works, initial=work))
        del self._work[base]  # accumulate's initial value is the parent's work
        self._hashes.extend(hashes)
        self._raw += raw

    def _move_best(self, new_tip: int) -> tuple[Reorg | None, list[int]]:
        """Make `new_tip` the best chain's tip; returns the reorg, if any, and
        the records that joined the best chain, upwards."""
        old_tip = self._best[-1] if self._best else -1
        ancestor, joined = self._path_from_best(new_tip)
        reorg = None
        if old_tip >= 0 and ancestor != old_tip:
            left = self._best[self._height[ancestor] + 1 :]
            reorg = Reorg(
                old_tip=self._tip_of(old_tip),
                new_tip=self._tip_of(new_tip),
                common_ancestor=self._tip_of(ancestor),
                disconnected=[self._hashes[r] for r in left],
                connected=[self._hashes[r] for r in joined],
            )
        del self._best[self._height[ancestor] + 1 if ancestor >= 0 else 0 :]
        self._best.extend(joined)
        return reorg, joined

    def _path_from_best(self, rec: int) -> tuple[int, list[int]]:
        """The last ancestor of ``rec`` on the best chain (-1 if none) and the
        records after it up to ``rec``. Goes run by run: within a run the
        records on the best chain are a prefix (the best chain holds every
        ancestor of its records), found by bisection, so a walk down a
        million-header branch costs a few steps per fork, not one per header."""
        pieces: list[range] = []
        while rec >= 0 and not self._on_best(rec):
            start = self._run_starts[bisect.bisect_right(self._run_starts, rec) - 1]
            lo, hi = start, rec  # the first record of start..rec that is not on the best chain
            while lo < hi:
                mid = (lo + hi) // 2
                if self._on_best(mid):
                    lo = mid + 1
                else:
                    hi = mid
            pieces.append(range(lo, rec + 1))
            rec = self._parent[lo]
        return rec, list(itertools.chain.from_iterable(reversed(pieces)))

    def _on_best(self, rec: int) -> bool:
        h = self._height[rec]
        return h < len(self._best) and self._best[h] == rec

    def _tip_of(self, rec: int) -> Tip:
        return Tip(self._height[rec], self._hashes[rec], self._work[rec])

    def connect(self, headers: bytes) -> ConnectResult:
        """Connect a batch of consecutive headers (a ``headers`` message's
        worth). Headers already known are skipped. Raises
        :class:`OrphanHeadersError` if the first one's parent is unknown, and
        :class:`BadHeaderError` (after storing the valid ones before it) if one
        fails linkage or proof of work."""
        headers = bytes(headers)
        if len(headers) % HEADER_LEN:
            raise HeaderError(f"a batch of headers is a multiple of 80 bytes, not {len(headers)}")
        if not headers:
            return ConnectResult(self.tip, 0, False)
        with self._lock:
            first_prev = headers[_PREV]
            parent = self._index.get(first_prev)
            if parent is None:
                raise OrphanHeadersError(
                    f"the first header's parent {hash_hex(first_prev)} is not in the store"
                )
            result = check_headers(headers, first_prev, self.network.pow_limit)
            n_ok = len(headers) // HEADER_LEN if result.ok else result.failed_index
            assert n_ok is not None
            hashes = result.hashes.tobytes()
            new = [hashes[i : i + 32] for i in range(0, n_ok * 32, 32)]
            known = 0  # a linked batch: the known ones are a prefix
            while known < n_ok and new[known] in self._index:
                known += 1
            outcome = self._connect_new(headers, new, known, n_ok)
            if not result.ok:
                raise BadHeaderError(
                    f"header {result.failed_index} of the batch: {result.message}",
                    index=result.failed_index or 0,
                    reason=result.reason or "invalid",
                )
            return outcome

    def _connect_new(
        self, headers: bytes, hashes: list[bytes], known: int, n_ok: int
    ) -> ConnectResult:
        if known == n_ok:
            return ConnectResult(self.tip, 0, False)
        raw = headers[known * HEADER_LEN : n_ok * HEADER_LEN]
        parent = self._index[raw[_PREV]]
        # written before it is indexed: a failing write leaves the index as the file is
        self._write(fmt.encode_batch(raw))
        self._append_records(raw, hashes[known:n_ok], parent)
        last = len(self._hashes) - 1
        if self._work[last] <= self._work[self._best[-1]]:
            return ConnectResult(self.tip, n_ok - known, False)
        reorg, joined = self._move_best(last)
        return ConnectResult(self.tip, n_ok - known, True, reorg, [self._hashes[r] for r in joined])

    def _write(self, batch: bytes, sync: bool = False) -> None:
        """Append ``batch`` (in the OS on return: it survives the process being
        killed). If the write fails (a full disk) what it left is cut off, so
        that the file never holds half a batch in its middle, and the OSError
        is raised with the store unchanged."""
        view = memoryview(batch)
        try:
            while view:
                written = self._file.write(view)
                view = view[written or 0 :]
        except OSError:
            try:
                os.ftruncate(self._file.fileno(), self._size)
            except OSError:
                log.error("%s: a failed write could not be cut off again", self.path)
            raise
        self._size += len(batch)
        now = time.monotonic()
        if sync or now - self._last_fsync >= self._fsync_interval:
            os.fsync(self._file.fileno())
            self._last_fsync = now

    # --- reading ------------------------------------------------------------------

    @property
    def tip(self) -> Tip:
        with self._lock:
            return self._tip_of(self._best[-1])

    @property
    def height(self) -> int:
        with self._lock:
            return len(self._best) - 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._hashes)

    def __contains__(self, block_hash: bytes) -> bool:
        with self._lock:
            return bytes(block_hash) in self._index

    def _record(self, rec: int) -> bytes:
        return bytes(self._raw[rec * HEADER_LEN : (rec + 1) * HEADER_LEN])

    def header_at(self, height: int) -> bytes | None:
        """The best chain's header at ``height``."""
        with self._lock:
            if not 0 <= height < len(self._best):
                return None
            return self._record(self._best[height])

    def hash_at(self, height: int) -> bytes | None:
        with self._lock:
            if not 0 <= height < len(self._best):
                return None
            return self._hashes[self._best[height]]

    def header(self, block_hash: bytes) -> bytes | None:
        """Any stored header (best chain or not) by hash."""
        with self._lock:
            rec = self._index.get(bytes(block_hash))
            return None if rec is None else self._record(rec)

    def height_of(self, block_hash: bytes) -> int | None:
        """Height of a stored header on its own branch."""
        with self._lock:
            rec = self._index.get(bytes(block_hash))
            return None if rec is None else self._height[rec]

    def is_on_best_chain(self, block_hash: bytes) -> bool:
        with self._lock:
            rec = self._index.get(bytes(block_hash))
            return rec is not None and self._on_best(rec)

    def locator(self) -> list[bytes]:
        """A block locator for ``getheaders``: the last ten hashes of the best
        chain, then exponentially sparser back to genesis (Core's ``GetLocator``)."""
        with self._lock:
            heights: list[int] = []
            height, step = len(self._best) - 1, 1
            while height > 0:
                heights.append(height)
                if len(heights) > 10:
                    step *= 2
                height -= step
            heights.append(0)
            return [self._hashes[self._best[h]] for h in heights]

    def best_chain_hashes(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        with self._lock:
            recs = self._best[start:stop]
            hashes = [self._hashes[r] for r in recs]
        yield from hashes

    # --- lifecycle ------------------------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            os.fsync(self._file.fileno())
            self._last_fsync = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self.flush()
                self._file.close()

    def __enter__(self) -> HeadersStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
