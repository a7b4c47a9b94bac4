"""``peerpool sync`` against the real node: every block of the best chain
stored and verified from its offsets, the tip printed, and a second run
fetching only what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerpool.bitcoin.sink import INDEX_NAME, read_index, verify_stored_block
from peerpool.cli import main
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker

pytestmark = pytest.mark.regtest


def sync(node: RegtestNode, data: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(
        [
            "sync", "--network", "bsv-regtest", "--peer", node.p2p_address, "--data", str(data),
            "--concurrency", "3", "--large-message-limit", "200000", "--chunk-size", "65536",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    return capsys.readouterr().out.strip().splitlines()


def test_sync_command(
    regtest_node: RegtestNode, block_maker: BlockMaker, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    [coin] = block_maker.mine_coins(1)
    block_maker.submit(block_maker.make_block(coin, 400_000, seed=51))  # over the 200 kB limit
    regtest_node.generate(20)
    height, best = regtest_node.block_count(), regtest_node.best_block_hash()
    lines = sync(regtest_node, tmp_path, capsys)
    assert lines[-1] == f"tip {height} {best}"
    blocks = tmp_path / "blocks.bsv-regtest"
    stored = {e.hash: e for e in read_index(blocks)}
    chain = [regtest_node.rpc("getblockhash", h) for h in range(height + 1)]
    assert set(chain) <= set(stored)
    assert all(verify_stored_block(blocks, stored[h]) for h in chain)
    assert [stored[h].height for h in chain] == list(range(height + 1))
    assert any(e.num_chunks > 1 for e in stored.values())  # blocks over the limit came in chunks

    # a second run has nothing to fetch; after losing the last three index
    # lines (as a crash before their fsync would) it fetches exactly those
    out = sync(regtest_node, tmp_path, capsys)
    assert f"blocks: 0 downloaded (0.0 MB), {len(stored)} stored" in out[0]
    index = blocks / INDEX_NAME
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(b"".join(lines[:-3]))
    out = sync(regtest_node, tmp_path, capsys)
    assert "blocks: 3 downloaded" in out[0] and out[-1] == f"tip {height} {best}"
    assert {e.hash for e in read_index(blocks)} == set(stored)
