"""Indexing a chain end to end: the demo chain's shape (300 small blocks and a
52 MB block of 200-2,000-byte transactions) plus a 100 MB block of small
transactions, stored as a FileSink stores them (32 MiB chunks), indexed
into a fresh LMDB index by one local worker (the baseline), two local
workers, and a two-worker Dask LocalCluster, in one run; then txid and
script-history lookups, p99 over 10,000 random queries each.

Figures (issue 15): two workers >= 1.6x one; Dask within 20% of the local
pool; peak memory of the indexing process within K chunks plus a constant.
Each configuration is timed once (minutes of CPU on a shared 2-core machine),
in wall time: the workers are other processes. The per-chunk costs the README
works from are printed in the figure column: worker seconds per MB (parse)
and writer seconds per MB (LMDB puts).
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peerpool.bitcoin.sink import read_index
from peerpool.index.executors import LocalExecutor
from peerpool.index.indexer import Indexer
from peerpool.index.store import BlockBatch, IndexStore
from peerpool.index.work import ChunkTask, index_chunk
from tests.index.chain import NETWORK, Chain, make_chain

MB = 1_000_000
CHUNK = 32 << 20
K = 4


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match
    return int(match.group(1))


@pytest.fixture(scope="module")
def chain(request: Any) -> Iterator[Chain]:
    disabled = request.config.getoption("benchmark_disable", False)
    scale = 50 if disabled else 1
    root = Path(tempfile.mkdtemp(prefix="peerpool-bench-index-"))
    c = make_chain(root / "data", [0] * (300 // scale), chunk_size=CHUNK // scale)
    c.grow([52 * MB // scale], seed=52)
    c.grow([100 * MB // scale], seed=100, tx_sizes=(120, 350))
    yield c
    shutil.rmtree(root, ignore_errors=True)


class _AnonPeak:
    """The highest RssAnon (heap, not the LMDB map's file pages) seen by a
    thread sampling /proc/self/status every 5 ms."""

    def __init__(self) -> None:
        self.base = _status_kib("RssAnon")
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status_kib("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return (self.peak - self.base) / 1024


def _run(chain: Chain, executor: Any, tag: str) -> tuple[float, float, float, IndexStore]:
    db = chain.data.parent / f"db-{tag}"
    shutil.rmtree(db, ignore_errors=True)
    store = IndexStore(db, NETWORK.name, map_size=8 << 30)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    anon = _AnonPeak()
    started = time.perf_counter()
    report = Indexer(store, executor, max_in_flight=K).run(chain.data, NETWORK)
    seconds = time.perf_counter() - started
    anon_mib = anon.stop()
    assert report.indexed == len(chain.blocks) + 1
    return seconds, (_status_kib("VmHWM") - before) / 1024, anon_mib, store


def _figure(benchmark: Any, chain: Chain, run: tuple[float, float, float, IndexStore]) -> None:
    seconds, peak_mib, anon_mib, store = run
    store.close()
    size = sum(b.size for b in chain.blocks)
    benchmark.extra_info["bytes"] = size
    benchmark.extra_info["figure"] = (
        f"{size / seconds / MB:.0f} MB/s; peak RSS +{peak_mib:.0f} MiB, of which heap "
        f"+{anon_mib:.0f} MiB (K={K} chunks of {CHUNK >> 20} MiB = {K * CHUNK >> 20} MiB)"
    )


@pytest.mark.benchmark(group="index.chain")
def test_index_chain_one_worker_baseline(benchmark: Any, chain: Chain) -> None:
    with LocalExecutor(1) as pool:
        run = benchmark.pedantic(_run, (chain, pool, "one"), rounds=1)
    _figure(benchmark, chain, run)


@pytest.mark.benchmark(group="index.chain")
def test_index_chain_two_workers(benchmark: Any, chain: Chain) -> None:
    with LocalExecutor(2) as pool:
        run = benchmark.pedantic(_run, (chain, pool, "two"), rounds=1)
    _figure(benchmark, chain, run)


@pytest.mark.benchmark(group="index.chain")
def test_index_chain_dask_two_workers(benchmark: Any, chain: Chain) -> None:
    import distributed  # in the test extra: missing is a failure, never a skip

    from peerpool.index.executors_dask import DaskExecutor

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    )  # fmt: skip
    with distributed.Client(cluster) as client:
        run = benchmark.pedantic(_run, (chain, DaskExecutor(client), "dask"), rounds=1)
    cluster.close()
    _figure(benchmark, chain, run)


@pytest.mark.benchmark(group="index.per_chunk_costs")
def test_per_chunk_costs(benchmark: Any, chain: Chain) -> None:
    """Worker and writer cost of the 100 MB block's chunks, in CPU time per
    MB, measured apart in this process: what the README's sizing uses. The
    writer's cost here excludes unpickling results from workers."""
    big = chain.blocks[-1]
    entry = {e.hash: e for e in read_index(chain.blocks_dir)}[big.hash_hex]
    tasks = [
        ChunkTask.stored(chain.blocks_dir, big.height, big.hash, n, entry.num_chunks, True)
        for n in range(entry.num_chunks)
    ]

    def parse_all() -> list[Any]:
        return [index_chunk(t) for t in tasks]

    started = time.process_time()
    results = benchmark.pedantic(parse_all, rounds=1)
    worker_s = time.process_time() - started
    db = chain.data.parent / "db-costs"
    shutil.rmtree(db, ignore_errors=True)
    with IndexStore(db, NETWORK.name, map_size=8 << 30) as store:
        for h in range(big.height):  # an index at the block's parent, as the writer would find it
            batch = BlockBatch(store)
            batch.end_block(h, bytes(32))
            batch.commit()
            batch.abort()
        started = time.process_time()
        batch = BlockBatch(store)
        for r in results:
            batch.add(big.height, r.entries)
        batch.end_block(big.height, big.hash)
        batch.commit()
        batch.abort()
        writer_s = time.process_time() - started
    mb = big.size / MB
    benchmark.extra_info["bytes"] = big.size
    benchmark.extra_info["figure"] = (
        f"worker {worker_s / mb * 1e3:.1f} ms/MB (parse + entries); "
        f"writer {writer_s / mb * 1e3:.1f} ms/MB (LMDB puts, one commit)"
    )


def _p99(samples: list[float]) -> float:
    return float(np.percentile(np.array(samples), 99))


@pytest.mark.benchmark(group="index.lookups")
def test_lookups_p99(benchmark: Any, chain: Chain) -> None:
    db = chain.data.parent / "db-two"
    if not (db / "data.mdb").exists():
        with LocalExecutor(2) as pool:
            _run(chain, pool, "two")[3].close()
    rng = random.Random(9)
    with IndexStore(db, NETWORK.name) as store:
        txids = [t for b in chain.blocks for t in b.txids]
        queries = [rng.choice(txids) for _ in range(10_000)]
        from peerpool.index.parse import parse_block

        cols = parse_block(bytes(chain.blocks[-2].raw))
        scripts = list({bytes(h) for h in cols["out_script_hash"]})
        script_queries = [rng.choice(scripts) for _ in range(10_000)]

        def lookups() -> tuple[list[float], list[float]]:
            tx_t, sh_t = [], []
            for q in queries:
                t0 = time.perf_counter()
                assert store.tx(q) is not None
                tx_t.append(time.perf_counter() - t0)
            for q in script_queries:
                t0 = time.perf_counter()
                store.history(q)
                sh_t.append(time.perf_counter() - t0)
            return tx_t, sh_t

        tx_t, sh_t = benchmark.pedantic(lookups, rounds=1)
    benchmark.extra_info["items"] = 20_000
    benchmark.extra_info["figure"] = (
        f"txid p99 {_p99(tx_t) * 1e6:.0f} us, script history p99 {_p99(sh_t) * 1e6:.0f} us "
        f"(10,000 each; {len(scripts)} distinct scripts of the 52 MB block)"
    )
