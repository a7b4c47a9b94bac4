"""Bitcoin kernels against their pure-Python references (tests/reference/bitcoin/).

Targets from issue 2:
- preprocessor (tx_offsets) >= 30x the reference, on small transactions and
  on the real block 277,647; GB/s reported;
- chunk splitter fed 64 KiB pieces of a 1 GiB block, 32 MiB chunks: >= 1 GB/s,
  peak memory growth <= 2*C + 16 MiB (in the figure column). Its baseline is
  the reference splitter (pure Python, the same rule) on the same bytes;
- framing: MessageDecoder.feed over 1 MiB messages >= 0.8x one hashlib.sha256
  pass over the same payloads (the checksum is the floor of the cost);
- header batch check in 2,000-header batches: >= 1M headers/s and >= 4x.

Under `--benchmark-disable` (make test) every body runs once on inputs scaled
down so that the smoke run takes a few seconds.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerpool.bitcoin import (
    BlockChunker,
    MessageDecoder,
    check_headers,
    encode_message,
    release_chunk_buffers,
    tx_offsets,
)
from tests.bitcoin import synthetic
from tests.reference import bitcoin as ref

MiB = 1 << 20
PIECE = 64 << 10
CHUNK = 32 * MiB
HEADER_BATCH = 2000
MAGIC = synthetic.MAINNET_MAGIC


def _small_tx(rng: random.Random) -> bytes:
    """A 512-byte two-in, two-out transaction (scripts the size of P2PKH
    signatures); 512 divides 64 KiB, so a block of copies cut in 64 KiB pieces
    repeats one piece and costs no memory to hold."""
    inputs = [synthetic.TxIn(rng.randbytes(36), rng.randbytes(176)) for _ in range(2)]
    tx = synthetic.serialize_tx(inputs, [(1000, rng.randbytes(25)), (2000, rng.randbytes(25))])
    assert len(tx) == 512
    return tx


def _pieces_of(template: bytes, block_size: int) -> list[bytes]:
    """The block in 64 KiB pieces, equal pieces shared (a 1 GiB block is a
    list of references to three distinct pieces)."""
    pieces: list[bytes] = []
    for piece in synthetic.repeated_block_stream(template, block_size, PIECE):
        pieces.append(pieces[-1] if pieces and piece == pieces[-1] else piece)
    return pieces


_cache: dict[str, Any] = {}


def _cached(key: str, build: Callable[[], Any]) -> Any:
    """Inputs built once per session, shared by ours and the baseline."""
    if key not in _cache:
        _cache[key] = build()
    return _cache[key]


# --- preprocessor ----------------------------------------------------------------


def _small_tx_block(disabled: bool) -> bytes:
    rng = random.Random(30)
    templates = [synthetic.random_tx(rng, segwit=i % 4 == 0) for i in range(200)]
    size = (1 if disabled else 8) * MiB
    txs, total = [], 0
    while total < size:
        txs.append(templates[rng.randrange(len(templates))])
        total += len(txs[-1])
    return synthetic.block(txs)


@pytest.mark.benchmark(group="bitcoin.tx_offsets.small_txs")
def test_tx_offsets_small_txs(benchmark: Any) -> None:
    block = _cached(f"small{benchmark.disabled}", lambda: _small_tx_block(benchmark.disabled))
    benchmark.extra_info["bytes"] = len(block)
    assert len(benchmark(tx_offsets, block)) > 1000


@pytest.mark.benchmark(group="bitcoin.tx_offsets.small_txs")
def test_tx_offsets_small_txs_baseline(benchmark: Any) -> None:
    block = _cached(f"small{benchmark.disabled}", lambda: _small_tx_block(benchmark.disabled))
    benchmark.extra_info["bytes"] = len(block)
    assert len(benchmark(ref.tx_offsets, block)) > 1000


def _block_277647() -> bytes:
    return synthetic.blk_records(synthetic.DATA_DIR / "277647.dat")[0]


@pytest.mark.benchmark(group="bitcoin.tx_offsets.block_277647")
def test_tx_offsets_277647(benchmark: Any) -> None:
    block = _block_277647()
    benchmark.extra_info["bytes"] = len(block)
    assert len(benchmark(tx_offsets, block)) == 213


@pytest.mark.benchmark(group="bitcoin.tx_offsets.block_277647")
def test_tx_offsets_277647_baseline(benchmark: Any) -> None:
    block = _block_277647()
    benchmark.extra_info["bytes"] = len(block)
    assert len(benchmark(ref.tx_offsets, block)) == 213


# --- chunk splitter ----------------------------------------------------------------


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match
    return int(match.group(1))


def _peak_growth_mib(run: Callable[[], object]) -> float:
    """Peak RSS growth of one run: VmHWM reset through /proc/self/clear_refs
    (Linux >= 4.0), because tracemalloc does not see the kernel's allocations."""
    release_chunk_buffers()  # a cold start: no pooled buffer is already resident
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    run()
    return (_status_kib("VmHWM") - before) / 1024


def _chunk_pieces(disabled: bool) -> tuple[int, list[bytes]]:
    size = (64 if disabled else 1024) * MiB
    return size, _pieces_of(_small_tx(random.Random(1)), size)


def _chunk_all(make: Callable[[], Any], pieces: list[bytes]) -> int:
    splitter, chunks = make(), 0
    for piece in pieces:
        chunks += len(splitter.feed(piece))
    return chunks


@pytest.mark.benchmark(group="bitcoin.chunker_1GiB")
def test_chunker(benchmark: Any) -> None:
    size, pieces = _cached(f"chunk{benchmark.disabled}", lambda: _chunk_pieces(benchmark.disabled))
    chunks = -(-size // CHUNK)

    def run() -> int:
        return _chunk_all(lambda: BlockChunker(size, CHUNK), pieces)

    growth = _peak_growth_mib(run)
    benchmark.extra_info["bytes"] = size
    benchmark.extra_info["figure"] = f"peak +{growth:.0f} MiB (target <= {2 * CHUNK // MiB + 16})"
    assert benchmark.pedantic(run, rounds=3, iterations=1) == chunks


@pytest.mark.benchmark(group="bitcoin.chunker_1GiB")
def test_chunker_baseline(benchmark: Any) -> None:
    size, pieces = _cached(f"chunk{benchmark.disabled}", lambda: _chunk_pieces(benchmark.disabled))
    benchmark.extra_info["bytes"] = size

    def run() -> int:
        return _chunk_all(lambda: ref.ChunkSplitter(size, CHUNK), pieces)

    # one round: the reference takes seconds per GiB
    assert benchmark.pedantic(run, rounds=1, iterations=1) == -(-size // CHUNK)


# --- framing --------------------------------------------------------------------------


def _framed(disabled: bool) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(2)
    payloads = [rng.randbytes(MiB) for _ in range(4 if disabled else 64)]
    stream = b"".join(encode_message(MAGIC, "block", p) for p in payloads)
    # cut as a socket would deliver it: 64 KiB reads that ignore message bounds
    return payloads, [stream[i : i + PIECE] for i in range(0, len(stream), PIECE)]


@pytest.mark.benchmark(group="bitcoin.framing")
def test_framing(benchmark: Any) -> None:
    payloads, pieces = _cached(f"framed{benchmark.disabled}", lambda: _framed(benchmark.disabled))
    benchmark.extra_info["bytes"] = sum(map(len, payloads))

    def run() -> int:
        decoder, messages = MessageDecoder(MAGIC, max_payload=32 * MiB), 0
        for piece in pieces:
            messages += len(decoder.feed(piece))
        return messages

    assert benchmark(run) == len(payloads)


@pytest.mark.benchmark(group="bitcoin.framing")
def test_framing_baseline(benchmark: Any) -> None:
    payloads, _ = _cached(f"framed{benchmark.disabled}", lambda: _framed(benchmark.disabled))
    benchmark.extra_info["bytes"] = sum(map(len, payloads))

    def run() -> int:
        return len([hashlib.sha256(p).digest() for p in payloads])

    assert benchmark(run) == len(payloads)


# --- header batch check -----------------------------------------------------------------


def _chain(disabled: bool) -> list[bytes]:
    """A valid regtest chain (100k headers; nonces ground once per session) in
    2,000-header batches."""
    chain = synthetic.regtest_chain(10_000 if disabled else 100_000)
    step = HEADER_BATCH * 80
    return [chain[i : i + step] for i in range(0, len(chain), step)]


def _check_all(check: Callable[[bytes, bytes], bytes], batches: list[bytes]) -> int:
    prev = bytes(32)
    for batch in batches:
        prev = check(batch, prev)
    return len(batches)


def _ours(batch: bytes, prev: bytes) -> bytes:
    result = check_headers(batch, prev)
    assert result.ok
    return bytes(result.hashes[-1])


def _reference(batch: bytes, prev: bytes) -> bytes:
    hashes, failed, _ = ref.check_headers(batch, prev)
    assert failed is None
    return hashes[-1]


@pytest.mark.benchmark(group="bitcoin.check_headers")
def test_check_headers(benchmark: Any) -> None:
    batches = _cached(f"chain{benchmark.disabled}", lambda: _chain(benchmark.disabled))
    benchmark.extra_info["items"] = len(batches) * HEADER_BATCH
    assert benchmark(_check_all, _ours, batches) == len(batches)


@pytest.mark.benchmark(group="bitcoin.check_headers")
def test_check_headers_baseline(benchmark: Any) -> None:
    batches = _cached(f"chain{benchmark.disabled}", lambda: _chain(benchmark.disabled))
    benchmark.extra_info["items"] = len(batches) * HEADER_BATCH
    assert benchmark(_check_all, _reference, batches) == len(batches)
