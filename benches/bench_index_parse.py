"""The columnar parser (parse_block) against its pure-Python reference
(tests/reference/bitcoin/parse.py), both delivering the same numpy columns.
Target (issue 15): >= 30x on the real blocks of ../shared/data and on a
100 MB block of small transactions. Timed in CPU time (the machine is shared).

Both sides hash the same bytes: a txid is two SHA-256 passes over the
transaction and every output script is hashed once. The reference calls
hashlib (OpenSSL, one SHA-NI stream per call); the kernel hashes many
messages at once (rust/src/hash: SHA-NI lanes, AVX-512 for one-block
messages), at some 18 ns a 64-byte block on this machine, so the hashing
both must do bounds the ratio (README, "Indexing figures and sizing").
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from benches.index_blocks import shape
from peerpool.index.parse import COLUMNS, parse_block
from tests.bitcoin import synthetic
from tests.reference.bitcoin import parse as ref_parse

REAL = list(synthetic.real_blocks().values())
BLOCK_277647 = synthetic.blk_records(synthetic.DATA_DIR / "277647.dat")[0]


def _all_columns(parse: Any, blocks: list[bytes]) -> int:
    """Parse each block and take every column out, as a writer would."""
    rows = 0
    for block in blocks:
        cols = parse(block)
        rows += sum(len(cols[key]) for key in COLUMNS)
    return rows


@pytest.mark.benchmark(group="index.parse.real_blocks", timer=time.process_time)
def test_parse_real_blocks(benchmark: Any) -> None:
    benchmark.extra_info["bytes"] = sum(map(len, REAL))
    assert benchmark(_all_columns, parse_block, REAL) > 2000


@pytest.mark.benchmark(group="index.parse.real_blocks", timer=time.process_time)
def test_parse_real_blocks_baseline(benchmark: Any) -> None:
    benchmark.extra_info["bytes"] = sum(map(len, REAL))
    assert benchmark(_all_columns, ref_parse.parse_block, REAL) > 2000


@pytest.mark.benchmark(group="index.parse.block_277647", timer=time.process_time)
def test_parse_277647(benchmark: Any) -> None:
    benchmark.extra_info["bytes"] = len(BLOCK_277647)
    assert benchmark(_all_columns, parse_block, [BLOCK_277647]) > 1000


@pytest.mark.benchmark(group="index.parse.block_277647", timer=time.process_time)
def test_parse_277647_baseline(benchmark: Any) -> None:
    benchmark.extra_info["bytes"] = len(BLOCK_277647)
    assert benchmark(_all_columns, ref_parse.parse_block, [BLOCK_277647]) > 1000


@pytest.mark.benchmark(group="index.parse.small_txs_100MB", timer=time.process_time)
def test_parse_small_txs(benchmark: Any) -> None:
    block = shape("small_txs", benchmark.disabled)
    benchmark.extra_info["bytes"] = len(block)
    rows = benchmark.pedantic(_all_columns, (parse_block, [block]), rounds=3, iterations=1)
    assert rows > 10_000


@pytest.mark.benchmark(group="index.parse.small_txs_100MB", timer=time.process_time)
def test_parse_small_txs_baseline(benchmark: Any) -> None:
    block = shape("small_txs", benchmark.disabled)
    benchmark.extra_info["bytes"] = len(block)
    rows = benchmark.pedantic(
        _all_columns, (ref_parse.parse_block, [block]), rounds=1, iterations=1
    )
    assert rows > 10_000
