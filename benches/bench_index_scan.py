"""The tx_offsets scan against a pure-Python preprocessor that follows
conduit-db's algorithm (benches/conduit_preprocessor.py), on each block shape
of benches/index_blocks.py. Target (issue 15): >= 40x on every shape; the
baseline should land near 160-230 MB/s here, as the original did.

Timed in CPU time of the process (time.process_time): the machine is shared,
and wall time would count the time other processes hold the CPU.

Before/after the fast path (straight-line walk of whole transactions, with
the second cache line prefetched), CPU time, best of 25 on this machine:
demo_37MB 8.5 -> 6.2 ms, small_txs 39 -> 17.4 ms, segwit_heavy 10.4 -> 4.1 ms.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from benches import conduit_preprocessor as conduit
from benches.index_blocks import SHAPES, shape
from peerpool.bitcoin import tx_offsets


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("name", SHAPES)
def test_scan(benchmark: Any, name: str) -> None:
    benchmark.group = f"index.scan.{name}"
    block = shape(name, benchmark.disabled)
    benchmark.extra_info["bytes"] = len(block)
    offsets = benchmark(tx_offsets, block)
    assert offsets.tolist() == conduit.block_tx_offsets(block).tolist()


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("name", SHAPES)
def test_scan_baseline(benchmark: Any, name: str) -> None:
    benchmark.group = f"index.scan.{name}"
    block = shape(name, benchmark.disabled)
    benchmark.extra_info["bytes"] = len(block)
    offsets = benchmark.pedantic(conduit.block_tx_offsets, (block,), rounds=3, iterations=1)
    assert len(offsets) > 100
