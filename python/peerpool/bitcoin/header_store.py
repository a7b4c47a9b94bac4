"""``HeadersStore``: every header seen, every branch, the best chain by work.

On disk it is an append-only file of 80-byte headers in the order they were
connected (a header always after its parent); the index (hash -> record,
parent, height, cumulative work, best chain by height) is rebuilt on open.
A crash can only tear the end of the file: on open, a partial last record is
truncated, and so is everything from the first record that does not connect to
a header before it or fails proof of work. Writes go to the OS after every
batch (so a killed process loses nothing it connected) and are fsynced at most
every ``fsync_interval`` seconds and on close.

Checks: linkage and proof of work against each header's own bits and the
network's proof-of-work limit. Difficulty-adjustment rules (that bits are the
ones the retarget algorithm demands: Bitcoin's 2016-block retarget, BSV's
DAA) are out of scope: a peer could feed a branch of easy but valid-looking
headers, and chain selection by work is only as good as those bits. Indexers
that need that guarantee should compare with a trusted node's tip.

All methods are safe to call from several threads.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peerpool.bitcoin.blocks import hash_hex
from peerpool.bitcoin.headers import HEADER_LEN, check_headers, work_of_bits
from peerpool.bitcoin.networks import Network, get_network
from peerpool.errors import BadHeaderError, HeaderError, OrphanHeadersError

_PREV = slice(4, 36)
_READ_BATCH = 100_000  # headers hashed and checked per kernel call on open


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
        self._best: list[int] = []  # record number of the best chain at each height
        self._work_of_bits: dict[int, int] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        self._file = self.path.open("ab")
        if not self._hashes:
            genesis = self.network.genesis_header
            self._append_records(genesis, [self.network.genesis_hash], -1)
            self._write(genesis, force_sync=True)
        # The best chain: most work; among equals the first seen (as Core does).
        self._move_best(max(range(len(self._work)), key=self._work.__getitem__))

    # --- opening --------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        usable = len(data) - len(data) % HEADER_LEN
        good = self._replay(memoryview(data)[:usable])
        if good < len(data):
            with self.path.open("r+b") as f:  # drop the torn or corrupt tail
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())

    def _replay(self, data: memoryview) -> int:
        """Index the records; returns how many bytes of them are good."""
        genesis = self.network.genesis_header
        if len(data) < HEADER_LEN or bytes(data[:HEADER_LEN]) != genesis:
            return 0  # not our network's file, or torn in its first record: start afresh
        pos = 0
        limit = self.network.pow_limit
        while pos < len(data):
            batch = data[pos : pos + _READ_BATCH * HEADER_LEN]
            result = check_headers(bytes(batch), None, limit)
            n_ok = len(batch) // HEADER_LEN if result.ok else result.failed_index
            assert n_ok is not None
            hashes = result.hashes.tobytes()
            for i in range(n_ok):
                rec = bytes(batch[i * HEADER_LEN : (i + 1) * HEADER_LEN])
                parent = self._index.get(rec[_PREV], -1) if self._hashes else -1
                if self._hashes and parent < 0:
                    return pos + i * HEADER_LEN  # does not connect: corrupt from here
                self._append_records(rec, [hashes[i * 32 : i * 32 + 32]], parent)
            pos += n_ok * HEADER_LEN
            if result.ok:
                continue
            if result.reason != "prev-blk-not-found":
                return pos  # fails proof of work: corrupt from here
            if n_ok == 0:
                # a branch point: this record's parent is an earlier record, not
                # the one before it; link it through the index and go on
                rec = bytes(batch[:HEADER_LEN])
                parent = self._index.get(rec[_PREV], -1)
                if parent < 0 or not check_headers(rec, None, limit).ok:
                    return pos
                self._append_records(rec, [result.hashes[0].tobytes()], parent)
                pos += HEADER_LEN
        return pos

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
        self._parent.append(first_parent)
        self._parent.extend(range(base, base + n - 1))
        self._height.extend(range(height, height + n))
        self._work.extend(itertools.accumulate(works, initial=work))
        del self._work[base]  # accumulate's initial value is the parent's work
        self._hashes.extend(hashes)
        self._raw += raw

    def _move_best(self, new_tip: int) -> tuple[Reorg | None, list[bytes]]:
        """Make `new_tip` the best chain's tip; returns the reorg, if any, and
        the hashes that joined the best chain."""
        old_tip = self._best[-1] if self._best else -1
        joined: list[int] = []
        rec = new_tip
        while rec >= 0 and not self._on_best(rec):
            joined.append(rec)
            rec = self._parent[rec]
        ancestor = rec
        joined.reverse()
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
        return reorg, [self._hashes[r] for r in joined]

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
        self._append_records(raw, hashes[known:n_ok], parent)
        self._write(raw)
        last = len(self._hashes) - 1
        if self._work[last] <= self._work[self._best[-1]]:
            return ConnectResult(self.tip, n_ok - known, False)
        reorg, joined = self._move_best(last)
        return ConnectResult(self.tip, n_ok - known, True, reorg, joined)

    def _write(self, raw: bytes, force_sync: bool = False) -> None:
        self._file.write(raw)
        self._file.flush()  # in the OS now: survives the process being killed
        now = time.monotonic()
        if force_sync or now - self._last_fsync >= self._fsync_interval:
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
            self._file.flush()
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
