"""``IndexStore``: the LMDB index of a chain.

Sub-databases (keys and values are fixed-width binary; heights big-endian
where they sort):

=========== ====================================== ==============================================
db          key                                    value
=========== ====================================== ==============================================
``meta``    ``format``, ``network``, ``tip``       version, network name, height (8 BE) + hash
``txs``     txid (32, internal order)              height, offset, size (3 x u64 LE)
``history`` script hash (32), duplicates sorted    height (8 BE), txid (32), output index (4 BE),
                                                   value (i64 LE): a script's outputs in height order
``spends``  outpoint: txid (32) + index (4 BE)     spending txid (32), input index (4 LE),
                                                   height (8 LE)
``blocks``  height (8 BE)                          block hash (32)
=========== ====================================== ==============================================

A block's entries and the new tip go in one write transaction, so a kill at
any moment leaves the index at a block boundary; every put is idempotent
(same key, same value; ``history`` refuses a duplicate pair), so writing a
block again after a crash duplicates nothing. A full map (``MapFullError``)
aborts the block's transaction: :class:`~peerpool.errors.IndexFullError`, and
the index is as it was before that block.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import lmdb
import numpy as np

from peerpool._core import Columns, row_pairs
from peerpool.errors import IndexFormatError, IndexFullError

FORMAT_VERSION = 1
DEFAULT_MAP_SIZE = 1 << 30
_TIP = struct.Struct(">Q32s")
_TX = struct.Struct("<QQQ")
_HISTORY = struct.Struct(">Q32sI")  # then the value, i64 LE
_SPEND = struct.Struct("<32sIQ")
_DBS = ("meta", "txs", "history", "spends", "blocks")
#: pairs handed to one ``putmulti``: bounds the pair objects alive at once
#: (some 200 bytes each) while keeping the calls few
PUT_ROWS = 1 << 16


@dataclass(frozen=True)
class IndexedTip:
    height: int
    hash: bytes  # internal byte order


@dataclass(frozen=True)
class TxLocation:
    height: int
    offset: int
    size: int


@dataclass(frozen=True)
class Spend:
    txid: bytes
    input_index: int
    height: int


@dataclass(frozen=True)
class HistoryEntry:
    txid: bytes
    output_index: int
    value: int
    height: int
    spent_by: Spend | None


@dataclass(frozen=True)
class Packed:
    """One db's (key, value) pairs as two byte strings of fixed-width rows,
    sorted by key (puts in key order touch each B-tree page once per batch).
    This is what a worker sends the writer: two buffers, not a million objects."""

    keys: bytes
    key_width: int
    values: bytes
    value_width: int

    def __len__(self) -> int:
        return len(self.keys) // self.key_width

    def batches(self) -> Iterator[list[tuple[bytes, bytes]]]:
        """The (key, value) pairs in key order, in lists of at most
        ``PUT_ROWS``, made in Rust: slicing them here in a generator cost
        the writer more than LMDB's puts did."""
        n = len(self)
        for start in range(0, n, PUT_ROWS):
            stop = min(n, start + PUT_ROWS)
            yield row_pairs(self.keys, self.key_width, self.values, self.value_width, start, stop)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return itertools.chain.from_iterable(self.batches())


def _head(rows: np.ndarray, start: int) -> np.ndarray:
    return np.ascontiguousarray(rows[:, start : start + 8]).view(">u8").ravel()


def _pack(keys: np.ndarray, values: np.ndarray, value_at: int | None = None) -> Packed:
    """Rows ordered by the first 8 key bytes (big-endian: LMDB's order, and
    close enough to it for locality); with ``value_at``, equal keys (a
    script paid many times) by 8 value bytes from there, so a dupsort db
    appends a hot key's values in order instead of all over its subtree."""
    if value_at is None:
        order = np.argsort(_head(keys, 0), kind="stable")
    else:
        order = np.lexsort((_head(values, value_at), _head(keys, 0)))
    return Packed(keys[order].tobytes(), keys.shape[1], values[order].tobytes(), values.shape[1])


def _u8(values: np.ndarray, dtype: str, width: int) -> np.ndarray:
    return np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(-1, width)


def block_entries(height: int, cols: Mapping[str, Any] | Columns) -> dict[str, Packed]:
    """The entries of one block (or chunk) of parsed columns, per db, built
    with numpy only."""
    txid = np.ascontiguousarray(cols["tx_txid"], dtype=np.uint8).reshape(-1, 32)
    n = len(txid)
    tx_vals = np.empty((n, 3), dtype="<u8")
    tx_vals[:, 0] = height
    tx_vals[:, 1] = cols["tx_offset"]
    tx_vals[:, 2] = cols["tx_size"]

    out_tx = cols["out_tx"].astype(np.intp)
    m = len(out_tx)
    hist = np.empty((m, 52), dtype=np.uint8)
    hist[:, 0:8] = np.frombuffer(struct.pack(">Q", height), dtype=np.uint8)
    hist[:, 8:40] = txid[out_tx]
    hist[:, 40:44] = _u8(cols["out_index"], ">u4", 4)
    hist[:, 44:52] = _u8(cols["out_value"], "<i8", 8)
    script_hash = np.ascontiguousarray(cols["out_script_hash"], dtype=np.uint8).reshape(-1, 32)

    spending = ~np.asarray(cols["in_coinbase"], dtype=bool)
    k = int(spending.sum())
    keys = np.empty((k, 36), dtype=np.uint8)
    keys[:, 0:32] = cols["in_prev_txid"][spending]
    keys[:, 32:36] = _u8(cols["in_prev_index"][spending], ">u4", 4)
    vals = np.empty((k, 44), dtype=np.uint8)
    vals[:, 0:32] = txid[cols["in_tx"][spending].astype(np.intp)]
    vals[:, 32:36] = _u8(cols["in_index"][spending], "<u4", 4)
    vals[:, 36:44] = np.frombuffer(struct.pack("<Q", height), dtype=np.uint8)
    return {
        "txs": _pack(txid, tx_vals.view(np.uint8).reshape(n, 24)),
        "history": _pack(script_hash, hist, value_at=8),  # after the height: the txid
        "spends": _pack(keys, vals),
    }


class BlockBatch:
    """An open write transaction that blocks are added to chunk by chunk;
    ``end_block`` moves the tip inside it, ``commit`` makes the blocks since
    the last commit durable at once (several small blocks share one fsync).
    A crash loses only blocks not yet committed, and the tip says which."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self.txn = store.env.begin(write=True)
        tip = store.tip
        self.next_height = 0 if tip is None else tip.height + 1
        self.blocks = 0
        self.bytes = 0

    def add(self, height: int, entries: Mapping[str, Packed]) -> None:
        if height != self.next_height:
            raise IndexFormatError(f"block at height {height} where {self.next_height} is next")
        try:
            for name, packed in entries.items():
                with self.txn.cursor(db=self.store._db[name]) as cur:
                    for pairs in packed.batches():
                        cur.putmulti(pairs, dupdata=False)
                self.bytes += len(packed.keys) + len(packed.values)
        except lmdb.MapFullError:
            self.abort()
            raise self.store._full(height) from None

    def end_block(self, height: int, block_hash: bytes) -> None:
        db = self.store._db
        try:
            self.txn.put(struct.pack(">Q", height), block_hash, db=db["blocks"])
            self.txn.put(b"tip", _TIP.pack(height, block_hash), db=db["meta"])
        except lmdb.MapFullError:
            self.abort()
            raise self.store._full(height) from None
        self.next_height = height + 1
        self.blocks += 1

    def commit(self) -> None:
        try:
            self.txn.commit()
        except lmdb.MapFullError:
            raise self.store._full(self.next_height - 1) from None
        self.txn = self.store.env.begin(write=True)
        self.bytes = 0

    def abort(self) -> None:
        self.txn.abort()


class IndexStore:
    """The index in the LMDB environment at ``path`` for ``network`` (a name)."""

    def __init__(self, path: str | Path, network: str, map_size: int = DEFAULT_MAP_SIZE) -> None:
        self.path = Path(path)
        self.network = network
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self.env = lmdb.open(
                str(self.path), map_size=map_size, max_dbs=len(_DBS), writemap=True
            )
        except lmdb.Error as exc:
            raise IndexFormatError(f"{self.path} is not an LMDB index: {exc}") from None
        try:
            self._db = {
                name: self.env.open_db(name.encode(), dupsort=name == "history") for name in _DBS
            }
        except lmdb.Error as exc:
            self.env.close()
            raise IndexFormatError(f"{self.path}: unexpected databases ({exc})") from None
        self._check_meta()

    def _check_meta(self) -> None:
        with self.env.begin(write=True, db=self._db["meta"]) as txn:
            version, network = txn.get(b"format"), txn.get(b"network")
            if version is None and network is None:
                txn.put(b"format", struct.pack(">I", FORMAT_VERSION))
                txn.put(b"network", self.network.encode())
                return
        if version is None or struct.unpack(">I", version)[0] != FORMAT_VERSION:
            found = "none" if version is None else struct.unpack(">I", version)[0]
            self.env.close()
            raise IndexFormatError(
                f"{self.path}: index format version {found}, this peerpool reads "
                f"{FORMAT_VERSION}; index into a new folder"
            )
        if network is None or network.decode() != self.network:
            self.env.close()
            raise IndexFormatError(
                f"{self.path} indexes {network.decode() if network else 'no network'}, "
                f"not {self.network}"
            )

    # --- the tip ------------------------------------------------------------------

    @property
    def tip(self) -> IndexedTip | None:
        with self.env.begin(db=self._db["meta"]) as txn:
            raw = txn.get(b"tip")
        if raw is None:
            return None
        height, block_hash = _TIP.unpack(raw)
        return IndexedTip(height, block_hash)

    def hash_at(self, height: int) -> bytes | None:
        with self.env.begin(db=self._db["blocks"]) as txn:
            raw = txn.get(struct.pack(">Q", height))
        return None if raw is None else bytes(raw)

    # --- writing --------------------------------------------------------------------

    def _full(self, height: int) -> IndexFullError:
        return IndexFullError(
            f"{self.path}: the LMDB map size ({self.env.info()['map_size']} bytes) is "
            f"reached at height {height}; nothing of it was kept, reopen with a larger map size"
        )

    def add_block(self, height: int, block_hash: bytes, parts: Sequence[Mapping[str, Any]]) -> None:
        """Index one block from the parsed columns of its chunks, in order, and
        move the tip to it, in one transaction."""
        batch = BlockBatch(self)
        try:
            for cols in parts:
                batch.add(height, block_entries(height, cols))
            batch.end_block(height, block_hash)
        except BaseException:
            batch.abort()
            raise
        batch.commit()
        batch.abort()

    def remove_block(self, height: int, parts: Sequence[Mapping[str, Any]]) -> None:
        """Undo the tip block (its parsed columns again): its entries go, and the
        tip moves to its parent, in one transaction."""
        tip = self.tip
        if tip is None or tip.height != height:
            raise IndexFormatError(f"height {height} is not the indexed tip")
        entries = [block_entries(height, cols) for cols in parts]
        parent = self.hash_at(height - 1) if height > 0 else None
        with self.env.begin(write=True) as txn:
            for part in entries:
                for key, _ in part["txs"].items():
                    txn.delete(key, db=self._db["txs"])
                for key, value in part["history"].items():
                    txn.delete(key, value, db=self._db["history"])
                for key, _ in part["spends"].items():
                    txn.delete(key, db=self._db["spends"])
            txn.delete(struct.pack(">Q", height), db=self._db["blocks"])
            if parent is None:
                txn.delete(b"tip", db=self._db["meta"])
            else:
                txn.put(b"tip", _TIP.pack(height - 1, parent), db=self._db["meta"])

    # --- queries ----------------------------------------------------------------------

    def tx(self, txid: bytes) -> TxLocation | None:
        with self.env.begin(db=self._db["txs"]) as txn:
            raw = txn.get(txid)
        return None if raw is None else TxLocation(*_TX.unpack(raw))

    def spend(self, txid: bytes, index: int) -> Spend | None:
        with self.env.begin(db=self._db["spends"]) as txn:
            raw = txn.get(txid + struct.pack(">I", index))
        if raw is None:
            return None
        spender, input_index, height = _SPEND.unpack(raw)
        return Spend(spender, input_index, height)

    def history(self, script_hash: bytes) -> list[HistoryEntry]:
        """The outputs paying a script (its SHA-256, internal order), oldest
        first, each with the input that spends it, if any."""
        out = []
        with self.env.begin() as txn:
            cur = txn.cursor(db=self._db["history"])
            spends = txn.cursor(db=self._db["spends"])
            if cur.set_key(script_hash):
                for raw in cur.iternext_dup():
                    height, txid, index = _HISTORY.unpack_from(raw)
                    (value,) = struct.unpack_from("<q", raw, _HISTORY.size)
                    spent = spends.get(txid + struct.pack(">I", index))
                    spend = Spend(*_SPEND.unpack(spent)) if spent is not None else None
                    out.append(HistoryEntry(txid, index, value, height, spend))
        return out

    def counts(self) -> dict[str, int]:
        with self.env.begin() as txn:
            return {name: txn.stat(self._db[name])["entries"] for name in _DBS[1:]}

    def iter_txids(self) -> Iterator[bytes]:
        with self.env.begin(db=self._db["txs"]) as txn:
            yield from (bytes(k) for k in txn.cursor().iternext(values=False))

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
