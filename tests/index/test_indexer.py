"""The Indexer and IndexStore on a data folder of real regtest-difficulty
blocks (tests/index/chain.py): every transaction and output findable, spends
across blocks, multi-chunk blocks, resume without duplicates, a reorg undone,
and the faults: another network or format version, a full map, a malformed
stored block, a malformed query."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import lmdb
import numpy as np
import pytest

from peerpool.cli import main
from peerpool.errors import BlockFormatError, IndexFormatError, IndexFullError
from peerpool.index.executors import LocalExecutor
from peerpool.index.indexer import Indexer
from peerpool.index.store import IndexStore
from peerpool.testing.blocks import BuiltBlock
from peerpool.testing.transactions import OP_TRUE_SCRIPT
from tests.index.chain import NETWORK, Chain, make_chain

SIZES = [3_000, 250_000, 40_000, 1_000, 180_000, 5_000]


@pytest.fixture(scope="module")
def pool() -> LocalExecutor:
    with LocalExecutor(2) as p:
        yield p


def index(data: Path, db: Path, pool: LocalExecutor, **kw: int) -> tuple[IndexStore, object]:
    store = IndexStore(db, NETWORK.name, **kw)
    try:
        return store, Indexer(store, pool, max_in_flight=3).run(data, NETWORK)
    except BaseException:
        store.close()
        raise


def assert_indexed(store: IndexStore, blocks: list[BuiltBlock]) -> None:
    for b in blocks:
        sizes = np.diff([*b.tx_offsets.tolist(), b.size])
        for txid, offset, size in zip(b.txids, b.tx_offsets.tolist(), sizes, strict=True):
            loc = store.tx(txid)
            assert loc is not None and (loc.height, loc.offset, loc.size) == (
                b.height,
                offset,
                size,
            )


def test_a_chain_with_multi_chunk_blocks_is_indexed(tmp_path: Path, pool: LocalExecutor) -> None:
    chain = make_chain(tmp_path / "data", SIZES)
    assert max(b.size for b in chain.blocks) > 3 * chain.chunk_size
    store, report = index(chain.data, tmp_path / "db", pool)
    with store:
        assert report.indexed == len(SIZES) + 1 and report.behind == 0  # type: ignore[attr-defined]
        assert store.tip is not None and store.tip.hash == chain.blocks[-1].hash
        assert_indexed(store, chain.blocks)
        # every padding transaction pays OP_TRUE and is spent by the next one
        history = store.history(hashlib.sha256(OP_TRUE_SCRIPT).digest())
        txs = sum(len(b.txids) for b in chain.blocks)
        assert len(history) >= txs
        heights = [h.height for h in history]
        assert heights == sorted(heights)
        spent = [h for h in history if h.spent_by is not None]
        assert len(spent) >= txs - len(chain.blocks) - 1
        for h in spent[:200]:
            assert h.spent_by is not None and store.tx(h.spent_by.txid) is not None
            assert h.spent_by.height >= h.height


def test_indexing_again_and_resuming_duplicate_nothing(tmp_path: Path, pool: LocalExecutor) -> None:
    chain = make_chain(tmp_path / "data", SIZES[:3])
    store, _ = index(chain.data, tmp_path / "db", pool)
    store.close()
    chain.grow(SIZES[3:], seed=50)
    store, report = index(chain.data, tmp_path / "db", pool)
    with store:
        assert report.indexed == 3  # type: ignore[attr-defined]
        resumed = store.counts()
    # the same chain indexed in one go, and a block written twice (a crash
    # after its transaction but before the caller knew) changes nothing
    clean, _ = index(chain.data, tmp_path / "clean", pool)
    with clean:
        assert clean.counts() == resumed
        tip = clean.tip
        assert tip is not None
        again = _columns_of(chain, tip.height)
        clean.remove_block(tip.height, again)
        clean.add_block(tip.height, tip.hash, again)
        clean.remove_block(tip.height, again)
        clean.add_block(tip.height, tip.hash, again)
        assert clean.counts() == resumed


def _columns_of(chain: Chain, height: int) -> list[dict[str, np.ndarray]]:
    from peerpool.index.parse import parse_block

    block = next(b for b in chain.blocks if b.height == height)
    return [parse_block(bytes(block.raw)).to_dict()]


def test_a_reorg_is_undone_and_the_new_branch_indexed(tmp_path: Path, pool: LocalExecutor) -> None:
    chain = make_chain(tmp_path / "data", SIZES)
    store, _ = index(chain.data, tmp_path / "db", pool)
    store.close()
    fork = chain.blocks[:3]
    old = chain.blocks[3:]
    new = chain.grow([2_000, 90_000, 2_000, 3_000], seed=99, base=fork)
    assert chain.blocks[-1] is new[-1]
    store, report = index(chain.data, tmp_path / "db", pool)
    with store:
        assert report.undone == len(old)  # type: ignore[attr-defined]
        assert report.indexed == len(new)  # type: ignore[attr-defined]
        assert_indexed(store, chain.blocks)
        for b in old:
            assert all(store.tx(t) is None for t in b.txids[1:])
        assert store.tip is not None and store.tip.hash == new[-1].hash
    clean, _ = index(chain.data, tmp_path / "clean", pool)
    with clean, IndexStore(tmp_path / "db", NETWORK.name) as reorged:
        assert clean.counts() == reorged.counts()


def test_another_network_or_format_version_is_refused(tmp_path: Path) -> None:
    IndexStore(tmp_path / "db", NETWORK.name).close()
    with pytest.raises(IndexFormatError, match="bsv-regtest"):
        IndexStore(tmp_path / "db", "btc-regtest")
    env = lmdb.open(str(tmp_path / "db"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"format", struct.pack(">I", 99))
    env.close()
    with pytest.raises(IndexFormatError, match="version 99"):
        IndexStore(tmp_path / "db", NETWORK.name)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "data.mdb").write_bytes(b"not lmdb" * 1000)
    with pytest.raises(IndexFormatError):
        IndexStore(tmp_path / "junk", NETWORK.name)


def test_a_full_map_keeps_the_index_at_a_block_and_resumes(
    tmp_path: Path, pool: LocalExecutor
) -> None:
    chain = make_chain(tmp_path / "data", SIZES)
    with pytest.raises(IndexFullError, match="map size"):
        index(chain.data, tmp_path / "db", pool, map_size=256 << 10)
    with IndexStore(tmp_path / "db", NETWORK.name, map_size=256 << 10) as store:
        tip = store.tip
        assert tip is None or tip.height < len(SIZES)
        if tip is not None:
            assert_indexed(store, [b for b in chain.blocks if b.height <= tip.height])
    store, _ = index(chain.data, tmp_path / "db", pool, map_size=64 << 20)
    with store, IndexStore(tmp_path / "clean", NETWORK.name) as clean:
        Indexer(clean, pool).run(chain.data, NETWORK)
        assert store.counts() == clean.counts()


def test_a_malformed_stored_block_stops_at_the_block_before(
    tmp_path: Path, pool: LocalExecutor
) -> None:
    chain = make_chain(tmp_path / "data", SIZES)
    bad = chain.blocks[2]
    chunk = chain.blocks_dir / bad.hash_hex / "chunk_00000.npy"
    data = np.load(chunk)
    data[100:140] = 0xFD  # non-minimal CompactSizes where lengths are
    np.save(chunk, data)
    with pytest.raises(BlockFormatError, match=f"height {bad.height}"):
        index(chain.data, tmp_path / "db", pool)
    with IndexStore(tmp_path / "db", NETWORK.name) as store:
        assert store.tip is not None and store.tip.height == bad.height - 1


def test_query_command(
    tmp_path: Path, pool: LocalExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = make_chain(tmp_path / "data", SIZES[:2])
    db = tmp_path / "db"
    assert main(["index", "--data", str(chain.data), "--db", str(db), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"tip {chain.blocks[-1].height} {chain.blocks[-1].hash_hex}"
    txid = chain.blocks[-1].txids[3][::-1].hex()
    assert main(["index", "--db", str(db), "--query", "txid", txid]) == 0
    assert f"height {chain.blocks[-1].height}" in capsys.readouterr().out
    script_hash = hashlib.sha256(OP_TRUE_SCRIPT).digest()[::-1].hex()
    assert main(["index", "--db", str(db), "--query", "scripthash", script_hash]) == 0
    assert "spent by" in capsys.readouterr().out
    for bad in (["txid", "zz" * 32], ["txid", "ab"], ["address", txid]):
        assert main(["index", "--db", str(db), "--query", *bad]) == 2
        assert "QueryError" in capsys.readouterr().err


def test_killed_mid_run_resumes_without_loss_or_duplicates(
    tmp_path: Path, pool: LocalExecutor
) -> None:
    """``peerpool index`` in its own process, SIGKILLed once it has written
    some blocks: the next run goes on from the indexed tip and ends with the
    entries of a clean run, no more, no fewer."""
    import shutil
    import subprocess
    import sys
    import time

    # long enough (about 2 s of indexing) that the kill lands mid-run even when
    # the poll below is slowed by a loaded machine; 10 blocks were indexed
    # whole before the first poll once
    chain = make_chain(tmp_path / "data", [200_000] * 40)
    db = tmp_path / "db"
    cmd = [
        sys.executable,
        "-m",
        "peerpool.cli",
        "index",
        "--data",
        str(chain.data),
        "--db",
        str(db),
    ]
    last_height = len(chain.blocks)

    def index_and_kill() -> tuple[int, int | None]:
        """One run, SIGKILLed at the first poll that sees an indexed tip: (the
        tip's height, the exit code; -9 when the kill landed)."""
        proc = subprocess.Popen([*cmd, "--workers", "1", "--in-flight", "1"])
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if (db / "data.mdb").exists():
                    with IndexStore(db, NETWORK.name) as store:
                        if store.tip is not None:
                            break
                time.sleep(0.005)
            proc.kill()
        finally:
            proc.wait()
        with IndexStore(db, NETWORK.name) as store:
            assert store.tip is not None
            return store.tip.height, proc.returncode

    # a fast run can commit its last block before the poll sees the first: then
    # the kill proves nothing, and the run is repeated on a fresh folder
    for _attempt in range(5):
        killed_at, returncode = index_and_kill()
        if killed_at < last_height:
            break
        shutil.rmtree(db)
    assert killed_at < last_height, "the kill never landed before the last block"
    assert returncode == -9
    assert (
        subprocess.run([*cmd, "--workers", "2"], capture_output=True, timeout=300).returncode == 0
    )
    clean, _ = index(chain.data, tmp_path / "clean", pool)
    with clean, IndexStore(db, NETWORK.name) as resumed:
        assert resumed.counts() == clean.counts()
        assert resumed.tip == clean.tip
