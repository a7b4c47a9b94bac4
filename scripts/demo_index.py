"""The indexing part of `make demo`, run by scripts/demo.py after the sync
while the node is still up:

1. ``peerpool index`` builds the LMDB index of the synced chain (two local
   worker processes);
2. one known transaction of the large block (a txid the node reports) is
   looked up, and the history of the OP_TRUE script is printed (its first
   lines: every padding transaction of the large block pays it);
3. a reorg on the node (``invalidateblock`` of the block two below the tip,
   then a longer branch mined), ``peerpool sync`` again, and ``peerpool
   index`` again: the three old blocks are undone and the new branch indexed.

Raises SystemExit if a check fails.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from peerpool.bitcoin.sink import read_index
from peerpool.testing import RegtestNode
from peerpool.testing.transactions import OP_TRUE_SCRIPT


def _peerpool(*args: str) -> subprocess.CompletedProcess[str]:
    print("$ peerpool " + " ".join(args), flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", *args], capture_output=True, text=True, timeout=1800
    )
    print(done.stdout, end="")
    print(done.stderr, end="", file=sys.stderr, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"peerpool {args[0]} failed with exit code {done.returncode}")
    return done


def run(node: RegtestNode, data: Path, sync: Callable[[RegtestNode, Path], list[str]]) -> None:
    db = data / "index"
    tip = f"tip {node.block_count()} {node.best_block_hash()}"
    done = _peerpool("index", "--data", str(data), "--db", str(db), "--workers", "2")
    if done.stdout.strip().splitlines()[-1] != tip:
        raise SystemExit(f"the index ended elsewhere than the node's {tip}")

    largest = max(read_index(data / "blocks.bsv-regtest"), key=lambda e: e.size)
    txids = node.rpc("getblock", largest.hash, 1)["tx"]
    known = txids[len(txids) // 2]
    line = _peerpool("index", "--db", str(db), "--query", "txid", known).stdout
    if f"height {largest.height}" not in line:
        raise SystemExit(f"{known} is not indexed at height {largest.height}")

    script_hash = hashlib.sha256(OP_TRUE_SCRIPT).digest()[::-1].hex()
    print(f"$ peerpool index --db {db} --query scripthash {script_hash} | head -4", flush=True)
    history = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", "index", "--db", str(db), "--query", "scripthash",
         script_hash], capture_output=True, text=True, timeout=600, check=True,
    ).stdout.splitlines()  # fmt: skip
    print("\n".join(history[:4]) + f"\n  ... ({len(history) - 1} outputs in all)")

    fork = node.block_count() - 2
    print(f"reorg: invalidateblock at height {fork}, then 4 new blocks", flush=True)
    node.rpc("invalidateblock", node.rpc("getblockhash", fork))
    node.generate(4)
    new_tip = f"tip {node.block_count()} {node.best_block_hash()}"
    sync(node, data)
    done = _peerpool("index", "--data", str(data), "--db", str(db), "--workers", "2")
    if done.stdout.strip().splitlines()[-1] != new_tip or "undone 3" not in done.stderr:
        raise SystemExit("the index did not follow the reorg")
    print("index followed the reorg: 3 blocks undone, the new branch indexed")
