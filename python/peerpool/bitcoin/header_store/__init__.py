"""``HeadersStore``: every header seen, every branch, the best chain by work.

On disk (format in :mod:`peerpool.bitcoin.header_store.format`) a file header names
the format version and the network; then one checksummed batch per
``connect()`` that added headers, in the order they were connected (a header
always after its parent). The index (hash -> record, parent, height,
cumulative work, best chain by height) is rebuilt on open from the batches
alone: a batch that passes its checksum was checked (linkage, proof of work)
before it was written, so it is not checked again, nor hashed (batches carry
their hashes); records are kept as runs (:mod:`peerpool.bitcoin.header_store.records`)
and indexed by one numpy sort, so reopening is linear in the records however
many forks there are, with no Python object per header. A torn tail (the last
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

The subpackage holds the store's parts: ``format`` (the bytes on disk),
``records`` (the headers in memory as runs) with ``hash_index`` (hash ->
record), ``forks`` (branch tips and ancestors over the records) and
``migrate`` (the old format to this one). ``HeadersStore`` itself stays here,
so ``from peerpool.bitcoin.header_store import HeadersStore`` is unchanged.
"""

from __future__ import annotations

import array
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from peerpool.bitcoin.blocks import hash_hex
from peerpool.bitcoin.header_store import forks
from peerpool.bitcoin.header_store import format as fmt
from peerpool.bitcoin.header_store.records import Records, split_hashes
from peerpool.bitcoin.headers import HEADER_LEN, check_headers
from peerpool.bitcoin.networks import Network, get_network
from peerpool.errors import (
    BadHeaderError,
    HeaderError,
    HeaderStoreCorruptError,
    HeaderStoreFormatError,
    OrphanHeadersError,
    UnknownHeaderError,
)

log = logging.getLogger(__name__)

_PREV = slice(4, 36)


@dataclass(frozen=True)
class Tip:
    """A header of the store: its height on its branch, hash and cumulative work."""

    height: int
    hash: bytes  # internal byte order
    chainwork: int

    @property
    def hash_hex(self) -> str:
        """The hash as explorers show it (byte-reversed hex)."""
        return hash_hex(self.hash)

    def __repr__(self) -> str:
        return f"Tip(height={self.height}, hash={self.hash_hex}, chainwork={self.chainwork:#x})"


@dataclass(frozen=True)
class Branch:
    """A chain the store knows: its ``tip`` (no header has it for parent),
    where it leaves the best chain (``fork_point``: the tip itself for the
    best chain) and whether it is the best chain."""

    tip: Tip
    fork_point: Tip
    is_best: bool

    @property
    def length(self) -> int:
        """Headers on this branch above its fork point (0 for the best chain)."""
        return self.tip.height - self.fork_point.height


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

    def __repr__(self) -> str:
        return (
            f"Reorg({self.old_tip!r} -> {self.new_tip!r} from {self.common_ancestor!r}, "
            f"disconnected={[hash_hex(h) for h in self.disconnected]}, "
            f"connected={[hash_hex(h) for h in self.connected]})"
        )


@dataclass(frozen=True)
class ConnectResult:
    tip: Tip
    added: int
    tip_changed: bool
    reorg: Reorg | None = None
    new_best: list[bytes] = field(
        default_factory=list
    )  # hashes that joined the best chain, upwards

    def __repr__(self) -> str:
        return (
            f"ConnectResult(tip={self.tip!r}, added={self.added}, "
            f"tip_changed={self.tip_changed}, reorg={self.reorg!r}, "
            f"new_best={[hash_hex(h) for h in self.new_best]})"
        )


class HeadersStore:
    """Every header seen, on disk at ``path``, with its branches and the best chain by work.

    Opening reads the whole file once and redoes no proof of work; a new file
    starts with the network's genesis header. Use it as a context manager (or
    call ``close``) so the last writes are fsynced. Safe to use from several
    threads.

    Args:
        path: the store's file (its folder is created if missing).
        network: a network name or a ``Network``; a store of another network is refused.
        fsync_interval: at most this many seconds between fsyncs (every batch
            reaches the OS at once either way).

    Raises:
        peerpool.errors.HeaderStoreFormatError: ``path`` is not a regular file,
            or not a header store of this network.
        peerpool.errors.HeaderStoreCorruptError: the file is damaged other than
            by a torn last write (it is left as it is).
        peerpool.errors.HeaderStoreMigrationError: the file has the old format
            (convert it with ``peerpool.bitcoin.header_store.migrate.migrate_v1``).
        peerpool.errors.UnknownNetworkError: ``network`` is not a known name.
    """

    def __init__(
        self, path: str | Path, network: Network | str, *, fsync_interval: float = 1.0
    ) -> None:
        self.network = get_network(network) if isinstance(network, str) else network
        self.path = Path(path)
        self._lock = threading.RLock()
        self._fsync_interval = fsync_interval
        self._last_fsync = time.monotonic()
        self._records = Records()
        self._best = array.array("q")  # record number of the best chain at each height
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = self._load()  # bytes of the file that are good
        # unbuffered: a write that fails is cut off again (see _write)
        self._file = self.path.open("ab", buffering=0)
        if not self._records.count:
            genesis = self.network.genesis_header
            start = b"" if self._size else fmt.encode_file_header(self.network)
            batch = fmt.encode_batch(genesis, self.network.genesis_hash)
            self._write(start + batch, sync=True)
            self._records.append(genesis, [self.network.genesis_hash], -1)
        # The best chain: most work; among equals the first seen (as Core does).
        works = self._records.last_works()
        best_run = max(range(len(works)), key=works.__getitem__)
        self._move_best(self._records.run_tips()[best_run])

    # --- opening --------------------------------------------------------------

    def _load(self) -> int:
        """Index the file; returns its size once a torn tail is cut."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return 0
        if not stat.S_ISREG(mode):
            raise HeaderStoreFormatError(f"{self.path}: not a regular file")
        with self.path.open("rb") as f:
            found = fmt.scan(f, self.network, self.path)
        if found.torn is not None:
            log.warning("%s: cutting %s", self.path, found.torn)
            with self.path.open("r+b") as f:  # drop the torn tail (of the last write)
                f.truncate(found.good_end)
                f.flush()
                os.fsync(f.fileno())
        if found.counts:
            try:
                self._records.load(found.raw, found.hashes, found.counts)
            except ValueError as exc:  # checksums fine, contents not ours: a bug or a forgery
                raise HeaderStoreCorruptError(f"{self.path}: {exc}") from exc
        return found.good_end

    # --- the best chain -------------------------------------------------------------

    def _move_best(self, new_tip: int) -> tuple[Reorg | None, np.ndarray]:
        """Make `new_tip` the best chain's tip; returns the reorg, if any, and
        the records that joined the best chain, upwards."""
        recs = self._records
        old_tip = self._best[-1] if self._best else -1
        ancestor, joined = self._path_from_best(new_tip)
        reorg = None
        if old_tip >= 0 and ancestor != old_tip:
            left = self._best[recs.height(ancestor) + 1 :]
            reorg = Reorg(
                old_tip=self._tip_of(old_tip),
                new_tip=self._tip_of(new_tip),
                common_ancestor=self._tip_of(ancestor),
                disconnected=split_hashes(recs.hashes_for(np.frombuffer(left, dtype=np.int64))),
                connected=split_hashes(recs.hashes_for(joined)),
            )
        del self._best[recs.height(ancestor) + 1 if ancestor >= 0 else 0 :]
        self._best.frombytes(joined.tobytes())
        return reorg, joined

    def _path_from_best(self, rec: int) -> tuple[int, np.ndarray]:
        """The last ancestor of ``rec`` on the best chain (-1 if none) and the
        records after it up to ``rec``. Goes run by run: within a run the
        records on the best chain are a prefix (the best chain holds every
        ancestor of its records), found by bisection, so a walk down a
        million-header branch costs a few steps per fork, not one per header."""
        recs = self._records
        pieces: list[range] = []
        while rec >= 0 and not self._on_best(rec):
            lo, hi = recs.run_start(rec), rec  # the first of lo..rec not on the best chain
            while lo < hi:
                mid = (lo + hi) // 2
                if self._on_best(mid):
                    lo = mid + 1
                else:
                    hi = mid
            pieces.append(range(lo, rec + 1))
            rec = recs.parent(lo)
        ranges = [np.arange(r.start, r.stop, dtype=np.int64) for r in reversed(pieces)]
        return rec, np.concatenate(ranges) if ranges else np.empty(0, dtype=np.int64)

    def _on_best(self, rec: int) -> bool:
        h = self._records.height(rec)
        return h < len(self._best) and self._best[h] == rec

    def _tip_of(self, rec: int) -> Tip:
        recs = self._records
        return Tip(recs.height(rec), recs.hash(rec), recs.work(rec))

    # --- connecting -----------------------------------------------------------------

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
            if first_prev not in self._records.index:
                raise OrphanHeadersError(
                    f"the first header's parent {hash_hex(first_prev)} is not in the store"
                )
            result = check_headers(headers, first_prev, self.network.pow_limit)
            n_ok = len(headers) // HEADER_LEN if result.ok else result.failed_index
            assert n_ok is not None
            hashes = result.hashes[:n_ok].tobytes()
            outcome = self._connect_new(headers[: n_ok * HEADER_LEN], hashes)
            if not result.ok:
                raise BadHeaderError(
                    f"header {result.failed_index} of the batch: {result.message}",
                    index=result.failed_index or 0,
                    reason=result.reason or "invalid",
                )
            return outcome

    def _connect_new(self, headers: bytes, hashes: bytes) -> ConnectResult:
        recs = self._records
        known = recs.known_prefix(hashes)  # a linked batch: the known ones are a prefix
        n = len(hashes) // 32
        if known == n:
            return ConnectResult(self.tip, 0, False)
        raw = headers[known * HEADER_LEN :]
        parent = recs.index.get(raw[_PREV])
        assert parent is not None  # the first one's parent is known, and the rest link
        # written before it is indexed: a failing write leaves the index as the file is
        self._write(fmt.encode_batch(raw, hashes[known * 32 :]))
        new = split_hashes(hashes[known * 32 :])
        last = recs.append(raw, new, parent)
        if recs.work(last) <= recs.work(self._best[-1]):
            return ConnectResult(self.tip, n - known, False)
        reorg, joined = self._move_best(last)
        # usually the batch just extended the best chain: its hashes are the ones that joined
        extended = reorg is None and len(joined) == len(new)
        joined_hashes = new if extended else split_hashes(recs.hashes_for(joined))
        return ConnectResult(self.tip, n - known, True, reorg, joined_hashes)

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
        """The best chain's tip: its hash, height and cumulative work."""
        with self._lock:
            return self._tip_of(self._best[-1])

    @property
    def height(self) -> int:
        """The height of the best chain's tip (0 for a store holding only genesis)."""
        with self._lock:
            return len(self._best) - 1

    def __len__(self) -> int:
        with self._lock:
            return self._records.count

    def __contains__(self, block_hash: bytes) -> bool:
        with self._lock:
            return bytes(block_hash) in self._records.index

    def header_at(self, height: int) -> bytes | None:
        """The best chain's header at ``height``."""
        with self._lock:
            if not 0 <= height < len(self._best):
                return None
            return self._records.header(self._best[height])

    def hash_at(self, height: int) -> bytes | None:
        """The hash (internal byte order) of the best chain's block at ``height``, or
        None above the tip or below 0.
        """
        with self._lock:
            if not 0 <= height < len(self._best):
                return None
            return self._records.hash(self._best[height])

    def header(self, block_hash: bytes) -> bytes | None:
        """Any stored header (best chain or not) by hash."""
        with self._lock:
            rec = self._records.index.get(bytes(block_hash))
            return None if rec is None else self._records.header(rec)

    def height_of(self, block_hash: bytes) -> int | None:
        """Height of a stored header on its own branch."""
        with self._lock:
            rec = self._records.index.get(bytes(block_hash))
            return None if rec is None else self._records.height(rec)

    def is_on_best_chain(self, block_hash: bytes) -> bool:
        """True if ``block_hash`` is stored and on the best chain (False for a header
        of a side branch and for an unknown hash).
        """
        with self._lock:
            rec = self._records.index.get(bytes(block_hash))
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
            return [self._records.hash(self._best[h]) for h in heights]

    def best_chain_hashes(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The best chain's block hashes from height ``start`` up to (not including)
        ``stop`` (the tip when None), as 32-byte strings in internal byte order.
        """
        with self._lock:
            recs = self._best[start:stop]
            if not len(recs):
                return
            hashes = self._records.hashes_for(np.frombuffer(recs, dtype=np.int64))
        yield from (hashes[i : i + 32] for i in range(0, len(hashes), 32))

    # --- forks --------------------------------------------------------------------

    def _rec_of(self, block_hash: bytes) -> int:
        rec = self._records.index.get(bytes(block_hash))
        if rec is None:
            raise UnknownHeaderError(f"block {hash_hex(bytes(block_hash))} is not in the store")
        return rec

    def chains(self) -> list[Branch]:
        """Every branch the store knows (as Core's ``getchaintips``): the best
        chain first, then the others by chainwork, most first."""
        with self._lock:
            best = self._best[-1]
            branches = []
            for rec in forks.branch_tips(self._records):
                fork = self._path_from_best(rec)[0]
                branches.append(Branch(self._tip_of(rec), self._tip_of(fork), rec == best))
        branches.sort(key=lambda b: (not b.is_best, -b.tip.chainwork, b.tip.height))
        return branches

    def ancestor(self, block_hash: bytes, height: int) -> Tip | None:
        """The ancestor at ``height`` of a stored header, on that header's own
        branch (None above it or below 0). Raises UnknownHeaderError."""
        with self._lock:
            rec = forks.ancestor_at(self._records, self._rec_of(block_hash), height)
            return None if rec is None else self._tip_of(rec)

    def common_ancestor(self, a: bytes, b: bytes) -> Tip:
        """The highest header both ``a`` and ``b`` descend from (or are).
        Raises UnknownHeaderError if either is not stored."""
        with self._lock:
            recs = self._records
            return self._tip_of(forks.common_ancestor(recs, self._rec_of(a), self._rec_of(b)))

    def chainwork_at(self, height: int, branch: bytes | None = None) -> int | None:
        """The cumulative work at ``height`` on the branch that ends at (or
        passes through) header ``branch`` (default: the best chain); None
        when the branch has no header at that height. Raises UnknownHeaderError."""
        with self._lock:
            tip = self._best[-1] if branch is None else self._rec_of(branch)
            rec = forks.ancestor_at(self._records, tip, height)
            return None if rec is None else self._records.work(rec)

    # --- lifecycle ------------------------------------------------------------------

    def flush(self) -> None:
        """Fsync the file now (writes reach the OS after every batch; this makes them durable).

        Raises:
            OSError: the fsync failed (a full or failing disk).
        """
        with self._lock:
            os.fsync(self._file.fileno())
            self._last_fsync = time.monotonic()

    def close(self) -> None:
        """Fsync and close the file (idempotent); the store cannot be used afterwards."""
        with self._lock:
            if not self._file.closed:
                self.flush()
                self._file.close()

    def __enter__(self) -> Self:
        """The store itself; ``with`` closes it (flushing first) on the way out."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
