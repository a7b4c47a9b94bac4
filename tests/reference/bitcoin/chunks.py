"""The chunk splitter's rule, and a splitter fed in pieces."""

from __future__ import annotations

from dataclasses import dataclass

from tests.reference.bitcoin.blocks import TxSpan, parse_tx
from tests.reference.bitcoin.common import HEADER_LEN, Rejected
from tests.reference.bitcoin.compact import read_compact_size


@dataclass
class RefChunk:
    chunk_num: int
    num_chunks: int
    first_tx_index: int
    spans: list[TxSpan]

    @property
    def tx_offsets(self) -> list[int]:
        return [s.start for s in self.spans]

    @property
    def byte_range(self) -> tuple[int, int] | None:
        return (self.spans[0].start, self.spans[-1].end) if self.spans else None


def chunk_rule(spans: list[TxSpan], block_size: int, chunk_size: int) -> list[RefChunk]:
    """The issue's rule, literally: ceil(S / C) chunks; chunk k holds the
    transactions not in an earlier chunk that end within the first (k+1)*C
    bytes; the last chunk takes the rest, up to the block's end."""
    num_chunks = -(-block_size // chunk_size)
    chunks, taken = [], 0
    for k in range(num_chunks):
        cut = block_size if k == num_chunks - 1 else (k + 1) * chunk_size
        mine = [s for s in spans[taken:] if s.end <= cut]
        chunks.append(RefChunk(k, num_chunks, taken, mine))
        taken += len(mine)
    return chunks


class ChunkSplitter:
    """The rule applied to a block fed in pieces: the streaming baseline.

    Holds the bytes from the first transaction not yet handed out; parses each
    transaction once it is complete (a truncated parse is retried when more
    bytes arrive); cuts chunk k when byte (k+1)*C has arrived.
    """

    def __init__(self, block_size: int, chunk_size: int, allow_witness: bool = True) -> None:
        self.block_size = block_size
        self.chunk_size = chunk_size
        self.allow_witness = allow_witness
        self.num_chunks = -(-block_size // chunk_size)
        self.buf = bytearray()
        self.buf_start = 0  # block offset of buf[0]
        self.received = 0
        self.next_tx = -1  # block offset of the next transaction to parse; -1 before the count
        self.tx_count = 0
        self.parsed: list[TxSpan] = []  # complete, not yet handed out
        self.emitted = 0
        self.next_chunk = 0

    def feed(self, data: bytes) -> list[tuple[RefChunk, bytes]]:
        if self.received + len(data) > self.block_size:
            raise Rejected("count", self.block_size, "more bytes than the block")
        self.buf += data
        self.received += len(data)
        self._parse()
        out = []
        while self.next_chunk < self.num_chunks:
            k = self.next_chunk
            last = k == self.num_chunks - 1
            cut = self.block_size if last else (k + 1) * self.chunk_size
            if self.received < cut:
                break
            mine = [s for s in self.parsed if s.end <= cut]
            if last and self.emitted + len(mine) != self.tx_count:
                raise Rejected("count", self.received, "block ended early")
            del self.parsed[: len(mine)]
            data_out = b""
            if mine:
                lo, hi = mine[0].start - self.buf_start, mine[-1].end - self.buf_start
                data_out = bytes(self.buf[lo:hi])
                del self.buf[:hi]
                self.buf_start = mine[-1].end
            out.append((RefChunk(k, self.num_chunks, self.emitted, mine), data_out))
            self.emitted += len(mine)
            self.next_chunk += 1
        return out

    def _parse(self) -> None:
        if self.next_tx < 0:
            if self.received < HEADER_LEN + 1:
                return
            try:
                self.tx_count, size = read_compact_size(
                    bytes(self.buf[HEADER_LEN : HEADER_LEN + 9])
                )
            except Rejected as exc:
                if exc.kind == "truncated":
                    return
                raise
            self.next_tx = HEADER_LEN + size
            del self.buf[: self.next_tx]
            self.buf_start = self.next_tx
        # a view, not a copy: the buffer holds up to a whole chunk
        with memoryview(self.buf) as view:
            while self.emitted + len(self.parsed) < self.tx_count:
                try:
                    span = parse_tx(view, self.next_tx - self.buf_start, self.allow_witness)  # type: ignore[arg-type]
                except Rejected as exc:
                    if exc.kind == "truncated":
                        return
                    raise
                b = self.buf_start
                ws = None if span.witness_start is None else span.witness_start + b
                self.parsed.append(TxSpan(span.start + b, span.end + b, ws))
                self.next_tx = span.end + b
