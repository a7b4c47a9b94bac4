"""``peerpool sync`` then ``peerpool index`` against a Bitcoin SV regtest node
of our own (the reorg would disturb the shared one): a chain with a block
streamed as chunks, a known transaction looked up, a script's history, then a
real ``invalidateblock`` reorg on the node followed by the index (the blocks
of the old branch undone, the new branch indexed)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerpool.index.store import IndexStore
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker
from peerpool.testing.transactions import OP_TRUE_SCRIPT

pytestmark = pytest.mark.regtest
CHUNK = 1 << 20


@pytest.fixture(scope="module")
def node() -> Iterator[RegtestNode]:
    with RegtestNode() as n:
        yield n


def peerpool(*args: str, timeout: float = 600) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def sync(node: RegtestNode, data: Path) -> str:
    lines = peerpool(
        "sync", "--network", "bsv-regtest", "--peer", node.p2p_address, "--data", str(data),
        "--chunk-size", str(CHUNK), "--large-message-limit", str(CHUNK), "--no-progress",
    )  # fmt: skip
    return lines[-1]


def index(data: Path, db: Path, *extra: str) -> str:
    return peerpool("index", "--data", str(data), "--db", str(db), *extra)[-1]


def test_sync_index_query_and_follow_a_reorg(node: RegtestNode, tmp_path: Path) -> None:
    data, db = tmp_path / "data", tmp_path / "db"
    maker = BlockMaker(node)
    node.generate(3)
    [coin] = maker.mine_coins(1)
    big = maker.make_block(coin, 5_000_000, seed=15)
    maker.submit(big)
    node.generate(2)
    tip = f"tip {node.block_count()} {node.best_block_hash()}"
    assert sync(node, data) == tip
    assert index(data, db, "--workers", "2") == tip

    known = big.txids[1234][::-1].hex()
    line = peerpool("index", "--db", str(db), "--query", "txid", known)[0]
    assert line == f"txid {known} height {big.height} offset {int(big.tx_offsets[1234])} " + (
        f"size {int(big.tx_offsets[1235] - big.tx_offsets[1234])}"
    )
    script_hash = hashlib.sha256(OP_TRUE_SCRIPT).digest()[::-1].hex()
    history = peerpool("index", "--db", str(db), "--query", "scripthash", script_hash)
    assert len(history) > len(big.txids)  # every padding transaction pays OP_TRUE
    assert any("spent by" in h for h in history) and any("unspent" in h for h in history)

    # the reorg: the big block and what follows are invalidated; a longer branch is mined
    node.rpc("invalidateblock", big.hash_hex)
    node.generate(5)
    new_tip = f"tip {node.block_count()} {node.best_block_hash()}"
    assert sync(node, data) == new_tip
    done = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", "index", "--data", str(data), "--db", str(db)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == new_tip
    assert "undone 3" in done.stderr
    missing = peerpool_fails("index", "--db", str(db), "--query", "txid", known)
    assert "not indexed" in missing
    with IndexStore(db, "bsv-regtest") as store:
        assert store.tip is not None and store.tip.height == node.block_count()
        for h in range(node.block_count() + 1):
            assert store.hash_at(h) == bytes.fromhex(node.rpc("getblockhash", h))[::-1]


def peerpool_fails(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    return done.stdout


def test_a_scheduler_with_nothing_behind_it_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "data").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", "index", "--data", str(tmp_path / "data"),
         "--db", str(tmp_path / "db"), "--scheduler", f"tcp://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "SchedulerUnreachableError" in done.stderr and str(port) in done.stderr
