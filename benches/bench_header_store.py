"""Connecting headers into the HeadersStore (checks and file append included),
from 2,000-header messages, against a bare hashlib loop that only hashes the
headers and checks that each links to the one before (the floor of any pure
Python store; conduit-p2p's bitcoinx store runs well below it)."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.networks import get_network
from tests.bitcoin.chain import mine_chain

REGTEST = get_network("btc-regtest")
BATCH = 2000  # headers per `headers` message (protocol maximum)
_counter = itertools.count()


@pytest.fixture(scope="module")
def chain(request: Any) -> bytes:
    disabled = request.config.getoption("benchmark_disable", False)
    return mine_chain(REGTEST.genesis_header, 10_000 if disabled else 100_000)


def connect_all(folder: Path, chain: bytes) -> int:
    with HeadersStore(folder / f"h{next(_counter)}", REGTEST) as store:
        for i in range(0, len(chain), 80 * BATCH):
            store.connect(chain[i : i + 80 * BATCH])
        return store.height


def hash_and_link(chain: bytes) -> int:
    prev = hashlib.sha256(hashlib.sha256(REGTEST.genesis_header).digest()).digest()
    n = 0
    for i in range(0, len(chain), 80):
        header = chain[i : i + 80]
        if header[4:36] != prev:
            raise AssertionError("does not link")
        prev = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        n += 1
    return n


@pytest.mark.benchmark(group="bitcoin.header_store_connect")
def test_header_store_connect(benchmark: Any, chain: bytes, tmp_path: Path) -> None:
    n = len(chain) // 80
    benchmark.extra_info["items"] = n
    assert benchmark(connect_all, tmp_path, chain) == n


@pytest.mark.benchmark(group="bitcoin.header_store_connect")
def test_header_store_connect_baseline(benchmark: Any, chain: bytes) -> None:
    n = len(chain) // 80
    benchmark.extra_info["items"] = n
    assert benchmark(hash_and_link, chain) == n
