"""A block over 4 GiB, framed with BSV's extended header and streamed through
the message decoder into the chunk splitter, never whole in memory.

The block is generated as it is fed (copies of one ~1 MB transaction, the
last one sized to hit the length), so the test costs a few MiB besides what
the kernels hold. Peak memory is read from the kernel's own counter
(VmHWM, reset through /proc/self/clear_refs) because tracemalloc does not see
Rust allocations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from peerpool.bitcoin import (
    BlockChunker,
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    MessageDecoder,
    encode_header,
    merkle_root,
)
from tests.bitcoin import synthetic
from tests.reference import bitcoin as ref

MiB = 1 << 20
BLOCK_SIZE = (4 << 30) + 12_345  # over 4 GiB and not a multiple of anything
CHUNK_SIZE = 32 * MiB
PIECE_SIZE = 1 * MiB  # a socket read on a fast link


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"{field} missing from /proc/self/status"
    return int(match.group(1))


def _reset_peak_rss() -> None:
    # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
    Path("/proc/self/clear_refs").write_text("5")


class _Consumer:
    """What a peer connection does with a block: decoder events in, chunks out."""

    def __init__(self) -> None:
        self.chunker = BlockChunker(BLOCK_SIZE, CHUNK_SIZE)
        self.events: list[str] = []  # event kinds, runs of pieces collapsed
        self.streamed = 0
        self.chunk_nums: list[int] = []
        self.tx_total = 0
        self.txids: list[np.ndarray] = []
        self.max_buffered = 0

    def handle(self, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, LargeMessagePiece):
                self.streamed += len(event.data)
                for chunk in self.chunker.feed(event.data):
                    assert chunk.first_tx_index == self.tx_total
                    self.chunk_nums.append(chunk.chunk_num)
                    self.tx_total += len(chunk.tx_offsets)
                    self.txids.append(chunk.txids())
                self.max_buffered = max(self.max_buffered, self.chunker.buffered)
                if self.events[-1] != "piece":
                    self.events.append("piece")
            elif isinstance(event, (LargeMessageStart, LargeMessageEnd)):
                assert (event.command, event.length) == ("block", BLOCK_SIZE)
                self.events.append(type(event).__name__)
            else:
                raise AssertionError(f"unexpected {event!r}")


@pytest.mark.soak
def test_block_over_4_gib_streams_through_decoder_and_chunker() -> None:
    template = synthetic.sized_tx(1_000_003)
    count, last = synthetic.repeated_block_layout(template, BLOCK_SIZE)
    # the merkle root from the reference, so the txids the chunks give are checked
    root = ref.merkle_root([ref.txid(template)] * (count - 1) + [ref.txid(last)])
    magic = synthetic.MAINNET_MAGIC
    header = encode_header(magic, "block", BLOCK_SIZE)
    assert len(header) == 44

    decoder = MessageDecoder(magic, max_payload=1 << 40, large_threshold=MiB)
    consumer = _Consumer()
    _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    consumer.handle(decoder.feed(header))
    for piece in synthetic.repeated_block_stream(template, BLOCK_SIZE, PIECE_SIZE, root):
        consumer.handle(decoder.feed(piece))
    peak_growth = (_status_kib("VmHWM") - rss_before) * 1024

    assert consumer.events == ["LargeMessageStart", "piece", "LargeMessageEnd"]
    assert consumer.streamed == BLOCK_SIZE and decoder.at_boundary
    assert decoder.consumed == 44 + BLOCK_SIZE
    num_chunks = -(-BLOCK_SIZE // CHUNK_SIZE)
    assert num_chunks == 129
    assert consumer.chunk_nums == list(range(num_chunks))
    assert consumer.tx_total == count == consumer.chunker.tx_count
    assert consumer.chunker.done
    assert merkle_root(np.concatenate(consumer.txids)) == root
    assert consumer.max_buffered <= CHUNK_SIZE + len(template)
    assert peak_growth <= 2 * CHUNK_SIZE + 256 * MiB, (
        f"peak RSS grew by {peak_growth / MiB:.0f} MiB"
    )
