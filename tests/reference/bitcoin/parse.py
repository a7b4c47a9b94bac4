"""The columnar transaction parser in pure Python: the oracle of
``peerpool._core.parse_block`` / ``parse_chunk`` and their benchmark baseline.

Written from Core's ``UnserializeTransaction`` layout with struct, hashlib and
plain lists, the way a Python indexer would write it, and returning the same
columns as numpy arrays so that both sides deliver the same thing. Rejections
are :class:`Rejected` (kind and offset), as in the other references.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import numpy as np

from tests.reference.bitcoin.blocks import scan_block
from tests.reference.bitcoin.common import HEADER_LEN, Rejected
from tests.reference.bitcoin.compact import read_compact_size

_sha256 = hashlib.sha256
_u32 = struct.Struct("<I").unpack_from
_i64 = struct.Struct("<q").unpack_from
NULL_TXID = bytes(32)


def _sha256d(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


class _Columns:
    def __init__(self) -> None:
        self.txid = bytearray()
        self.offset: list[int] = []
        self.size: list[int] = []
        self.out_tx: list[int] = []
        self.out_index: list[int] = []
        self.out_value: list[int] = []
        self.out_script_offset: list[int] = []
        self.out_script_len: list[int] = []
        self.out_script_hash = bytearray()
        self.in_tx: list[int] = []
        self.in_index: list[int] = []
        self.in_prev_txid = bytearray()
        self.in_prev_index: list[int] = []
        self.in_coinbase: list[bool] = []

    def arrays(self) -> dict[str, Any]:
        def hashes(b: bytearray) -> Any:
            return np.frombuffer(bytes(b), dtype=np.uint8).reshape(-1, 32)

        return {
            "tx_txid": hashes(self.txid),
            "tx_offset": np.array(self.offset, dtype=np.uint64),
            "tx_size": np.array(self.size, dtype=np.uint64),
            "out_tx": np.array(self.out_tx, dtype=np.uint64),
            "out_index": np.array(self.out_index, dtype=np.uint32),
            "out_value": np.array(self.out_value, dtype=np.int64),
            "out_script_offset": np.array(self.out_script_offset, dtype=np.uint64),
            "out_script_len": np.array(self.out_script_len, dtype=np.uint64),
            "out_script_hash": hashes(self.out_script_hash),
            "in_tx": np.array(self.in_tx, dtype=np.uint64),
            "in_index": np.array(self.in_index, dtype=np.uint32),
            "in_prev_txid": hashes(self.in_prev_txid),
            "in_prev_index": np.array(self.in_prev_index, dtype=np.uint32),
            "in_coinbase": np.array(self.in_coinbase, dtype=np.bool_),
        }


def _compact(data: bytes, pos: int) -> tuple[int, int]:
    if data[pos] < 0xFD:
        return data[pos], pos + 1
    value, size = read_compact_size(data, pos)
    return value, pos + size


def _parse_tx(data: bytes, start: int, base: int, c: _Columns, allow_witness: bool) -> int:
    """One transaction into the columns; returns where it ends. Reads past
    the end raise IndexError or struct.error, which the callers turn into
    the reference preprocessor's verdict (OverflowError for offsets past 2**63)."""
    tx = len(c.offset)
    pos = start + 4
    n_in, pos = _compact(data, pos)
    segwit = False
    if n_in == 0 and allow_witness:
        flag = data[pos]
        pos += 1
        if flag not in (0, 1):
            raise Rejected("malformed", pos - 1, f"segwit flag {flag}")
        if flag == 0:  # no inputs, no outputs
            pos += 4
            c.txid += _sha256d(data[start:pos])
            c.offset.append(base + start)
            c.size.append(pos - start)
            return pos
        segwit = True
        n_in, pos = _compact(data, pos)
    for i in range(n_in):
        prev = data[pos : pos + 32]
        (prev_index,) = _u32(data, pos + 32)
        script_len, pos = _compact(data, pos + 36)
        pos += script_len + 4
        c.in_tx.append(tx)
        c.in_index.append(i)
        c.in_prev_txid += prev
        c.in_prev_index.append(prev_index)
        c.in_coinbase.append(n_in == 1 and prev == NULL_TXID and prev_index == 0xFFFFFFFF)
    n_out, pos = _compact(data, pos)
    for i in range(n_out):
        (value,) = _i64(data, pos)
        script_len, pos = _compact(data, pos + 8)
        c.out_tx.append(tx)
        c.out_index.append(i)
        c.out_value.append(value)
        c.out_script_offset.append(base + pos)
        c.out_script_len.append(script_len)
        c.out_script_hash += _sha256(data[pos : pos + script_len]).digest()
        pos += script_len
    if segwit:
        witness_start = pos
        for _ in range(n_in):
            items, pos = _compact(data, pos)
            for _ in range(items):
                length, pos = _compact(data, pos)
                pos += length
        pos += 4
        body = data[start : start + 4] + data[start + 6 : witness_start] + data[pos - 4 : pos]
        c.txid += _sha256d(body)
    else:
        pos += 4
        c.txid += _sha256d(data[start:pos])
    if pos > len(data):
        raise IndexError(pos)
    c.offset.append(base + start)
    c.size.append(pos - start)
    return pos


def _verdict(check: Any) -> Rejected:
    """What the reference preprocessor says of bytes the parser could not read."""
    try:
        check()
    except Rejected as exc:
        return exc
    return Rejected("malformed", 0, "transaction does not parse")


def parse_block(block: bytes, allow_witness: bool = True) -> dict[str, Any]:
    """Columns of every transaction of a block (Rejected if it is malformed)."""
    block = bytes(block)
    c = _Columns()
    try:
        count, pos = _compact(block, HEADER_LEN)
        if count == 0 or count > (len(block) - pos) // 10:
            raise Rejected("malformed", pos, "transaction count")
        for _ in range(count):
            pos = _parse_tx(block, pos, 0, c, allow_witness)
        if pos != len(block):
            raise Rejected("count", pos, "bytes after the last transaction")
    except (IndexError, OverflowError, struct.error, Rejected):
        raise _verdict(lambda: scan_block(block, allow_witness)) from None
    return c.arrays()


def parse_chunk(data: bytes, offsets: list[int], allow_witness: bool = True) -> dict[str, Any]:
    """Columns of a chunk: whole transactions at absolute ``offsets``, the
    first at ``data[0]``. Rejected("offsets") when they do not delimit it."""
    data = bytes(data)
    c = _Columns()
    if not offsets:
        if data:
            raise Rejected("offsets", 0, "data but no offsets")
        return c.arrays()
    base = offsets[0]
    for k, start in enumerate(offsets):
        stop = offsets[k + 1] if k + 1 < len(offsets) else base + len(data)
        if stop <= start:
            raise Rejected("offsets", stop, f"offset #{k + 1} not after #{k}")
        try:
            end = _parse_tx(data, start - base, base, c, allow_witness) + base
        except (IndexError, OverflowError, struct.error, Rejected):
            raise Rejected("unparsable", start, f"transaction #{k}") from None
        if end != stop:
            raise Rejected("offsets", end, f"transaction #{k} ends elsewhere")
    return c.arrays()


__all__ = ["parse_block", "parse_chunk"]
