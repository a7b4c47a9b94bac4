"""Transactions and blocks: where each transaction starts, txids, merkle roots."""

from __future__ import annotations

from dataclasses import dataclass

from tests.reference.bitcoin.common import HEADER_LEN, Rejected, sha256d
from tests.reference.bitcoin.compact import read_compact_size


@dataclass(frozen=True)
class TxSpan:
    """Where one transaction lies in a block: [start, end), and where its
    witness begins (segwit only) so its txid can leave the witness out."""

    start: int
    end: int
    witness_start: int | None = None


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise Rejected("truncated", len(self.data))
        self.pos += n

    def byte(self) -> int:
        self.skip(1)
        return self.data[self.pos - 1]

    def compact(self) -> int:
        try:
            value, size = read_compact_size(self.data, self.pos)
        except Rejected as exc:
            kind = "truncated" if exc.kind == "truncated" else "malformed"
            raise Rejected(kind, len(self.data) if kind == "truncated" else self.pos) from None
        self.pos += size
        return value


def parse_tx(data: bytes, pos: int, allow_witness: bool = True) -> TxSpan:
    """The transaction that starts at ``pos``, laid out as Core's
    UnserializeTransaction reads it."""
    r = _Reader(data, pos)
    r.skip(4)  # version
    n_inputs = r.compact()
    segwit = False
    if n_inputs == 0 and allow_witness:
        flag = r.byte()  # after an empty input vector: the segwit flag
        if flag == 0:  # no inputs, no outputs: the byte was the output count
            r.skip(4)
            return TxSpan(pos, r.pos)
        if flag != 1:
            raise Rejected("malformed", r.pos - 1, f"segwit flag {flag}")
        segwit = True
        n_inputs = r.compact()
    for _ in range(n_inputs):
        r.skip(36)  # outpoint
        r.skip(r.compact())  # script
        r.skip(4)  # sequence
    for _ in range(r.compact()):
        r.skip(8)  # value
        r.skip(r.compact())  # script
    witness_start = None
    if segwit:
        witness_start = r.pos
        for _ in range(n_inputs):
            for _ in range(r.compact()):
                r.skip(r.compact())
    r.skip(4)  # lock time
    return TxSpan(pos, r.pos, witness_start)


def scan_block(block: bytes, allow_witness: bool = True) -> list[TxSpan]:
    """Every transaction of a whole block."""
    block = bytes(block)
    r = _Reader(block, 0)
    r.skip(HEADER_LEN)
    count = r.compact()
    if count == 0:
        raise Rejected("malformed", r.pos, "no transactions")
    if count > (len(block) - r.pos) // 10:  # a transaction takes at least 10 bytes
        raise Rejected("malformed", r.pos, f"{count} transactions cannot fit")
    spans: list[TxSpan] = []
    pos = r.pos
    while len(spans) < count:
        if pos == len(block) and spans:
            raise Rejected("count", pos, f"{len(spans)} of {count} transactions")
        span = parse_tx(block, pos, allow_witness)
        spans.append(span)
        pos = span.end
    if pos != len(block):
        raise Rejected("count", pos, "bytes after the last transaction")
    return spans


def tx_offsets(block: bytes, allow_witness: bool = True) -> list[int]:
    return [s.start for s in scan_block(block, allow_witness)]


def txid_of(data: bytes, span: TxSpan) -> bytes:
    """Double SHA-256 of the transaction without marker, flag and witness."""
    tx = data[span.start : span.end]
    if span.witness_start is None:
        return sha256d(tx)
    ws = span.witness_start - span.start
    return sha256d(tx[:4] + tx[6:ws] + tx[-4:])


def txid(tx: bytes, allow_witness: bool = True) -> bytes:
    return txid_of(tx, parse_tx(tx, 0, allow_witness))


def merkle_root(txids: list[bytes]) -> bytes:
    level = list(txids)
    if not level:
        raise ValueError("no txids")
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def block_merkle_root(block: bytes, allow_witness: bool = True) -> bytes:
    """The merkle root rebuilt from the transactions this reference finds."""
    return merkle_root([txid_of(block, s) for s in scan_block(block, allow_witness)])
