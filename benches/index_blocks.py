"""The block shapes the index benchmarks share, built once per session.

- ``small_txs``: 100 MB of transactions of 120-350 bytes (about 424,000;
  the shape of the fetch benchmark), one input and two outputs each;
- ``demo_37MB``: 37 MB of 200-2,000-byte transactions (the demo's big block);
- ``segwit_heavy``: 32 MB of random transactions, every second one segwit.

Built with peerpool.testing and tests/bitcoin/synthetic (hashlib txids,
nothing from the kernels). Under ``--benchmark-disable`` they are 50x smaller.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from peerpool.testing.blocks import ChainTip, build_block
from peerpool.testing.transactions import Coin
from tests.bitcoin import synthetic

MB = 1_000_000
_cache: dict[str, Any] = {}


def cached(key: str, build: Callable[[], Any]) -> Any:
    if key not in _cache:
        _cache[key] = build()
    return _cache[key]


def _padded(size: int, min_tx: int, max_tx: int, seed: int) -> bytes:
    tip = ChainTip(hash=bytes(32), height=200, time=1_700_000_000, bits=synthetic.REGTEST_BITS)
    coin = Coin(bytes(range(32)), 0, 50 * 10**8)
    return bytes(
        build_block(tip, coin, size, min_tx_size=min_tx, max_tx_size=max_tx, seed=seed).raw
    )


def _segwit(size: int) -> bytes:
    rng = random.Random(44)
    templates = [synthetic.random_tx(rng, segwit=i % 2 == 0) for i in range(400)]
    txs, total = [], 0
    while total < size:
        txs.append(templates[rng.randrange(len(templates))])
        total += len(txs[-1])
    return synthetic.block(txs)


def shape(name: str, disabled: bool) -> bytes:
    scale = 50 if disabled else 1
    builders: dict[str, Callable[[], bytes]] = {
        "small_txs": lambda: _padded(100 * MB // scale, 120, 350, 7),
        "demo_37MB": lambda: _padded(37 * MB // scale, 200, 2_000, 3),
        "segwit_heavy": lambda: _segwit(32 * MB // scale),
    }
    return cached(f"{name}{disabled}", builders[name])


SHAPES = ("small_txs", "demo_37MB", "segwit_heavy")
