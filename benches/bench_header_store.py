"""The HeadersStore: connecting headers (checks and file append included), from
2,000-header messages, against a bare hashlib loop that only hashes the headers
and checks that each links to the one before (the floor of any pure Python
store; conduit-p2p's bitcoinx store runs well below it); and reopening a
mainnet-sized store (1 M headers, 1,000 forks) against a plain read of its file."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.header_store.format import FORMAT_VERSION
from peerpool.bitcoin.headers import hash_header
from peerpool.bitcoin.networks import get_network
from tests.bitcoin.chain import mine_chain, mine_header

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


# --- reopening a mainnet-sized store ------------------------------------------------

#: 1 million headers and 1,000 one-header side branches (the issue's target:
#: reopened in under 1 s); a smoke-sized store under --benchmark-disable.
FULL = (1_000_000, 1_000)
SMOKE = (20_000, 20)
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench"


def _build_store(path: Path, n: int, forks: int) -> None:
    """Mine the chain (cached beside the store: minutes of hashing once), connect
    it in 2,000-header batches, then one-header forks at random heights."""
    chain_file = CACHE / f"chain_{n}.raw"
    if chain_file.exists():
        chain = chain_file.read_bytes()
    else:
        chain = mine_chain(REGTEST.genesis_header, n)
        chain_file.write_bytes(chain)
    rng = random.Random(6)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with HeadersStore(tmp, REGTEST, fsync_interval=3600) as store:
        for i in range(0, len(chain), 80 * BATCH):
            store.connect(chain[i : i + 80 * BATCH])
        for k, height in enumerate(sorted(rng.sample(range(1, n), forks))):
            parent = chain[(height - 1) * 80 : height * 80]
            store.connect(mine_header(hash_header(parent), 1_800_000_000 + k, tag=k + 1))
        assert len(store) == n + forks + 1
    tmp.replace(path)


@pytest.fixture(scope="module")
def big_store(request: Any) -> tuple[Path, int, int]:
    disabled = request.config.getoption("benchmark_disable", False)
    n, forks = SMOKE if disabled else FULL
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"headers_{n}_{forks}.v{FORMAT_VERSION}"
    if not path.exists():
        _build_store(path, n, forks)
    return path, n, forks


def reopen(path: Path) -> int:
    with HeadersStore(path, REGTEST) as store:
        return len(store)


@pytest.mark.benchmark(group="bitcoin.header_store_reopen")
def test_header_store_reopen(benchmark: Any, big_store: tuple[Path, int, int]) -> None:
    path, n, forks = big_store
    benchmark.extra_info["items"] = n + forks
    benchmark.extra_info["figure"] = f"{n:,} headers + {forks:,} forks"
    assert benchmark.pedantic(reopen, (path,), rounds=5, iterations=1) == n + forks + 1


@pytest.mark.benchmark(group="bitcoin.header_store_reopen")
def test_header_store_reopen_baseline(benchmark: Any, big_store: tuple[Path, int, int]) -> None:
    """A plain read of the same file: the floor of any reopen."""
    path, _, _ = big_store
    size = path.stat().st_size
    assert len(benchmark.pedantic(path.read_bytes, rounds=5, iterations=1)) == size
