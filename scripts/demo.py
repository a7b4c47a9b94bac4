"""`make demo`: the Bitcoin peer layer end to end against a local regtest node.

1. start a Bitcoin SV regtest node (127.0.0.1 only, free ports, temporary datadir);
2. mine a few hundred blocks, one of them a block of 50 MB or more built
   here (tens of thousands of transactions) and submitted over RPC;
3. run ``peerpool sync`` against it (the real command, in a subprocess);
4. check every block of the node's chain is stored, and that each one's
   merkle root rebuilt from the stored chunks and offsets matches its header;
5. run ``peerpool sync`` again: nothing left to fetch;
6. stop the node.

Exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peerpool.bitcoin.sink import read_index, verify_stored_block
from peerpool.testing import RegtestNode, ensure_bitcoind
from peerpool.testing.blocks import BlockMaker

import demo_index  # scripts/demo_index.py, beside this file

LARGE_BLOCK_SIZE = 52_000_000


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run_sync(node: RegtestNode, data: Path) -> list[str]:
    command = [
        sys.executable, "-m", "peerpool.cli", "sync", "--network", "bsv-regtest",
        "--peer", node.p2p_address, "--data", str(data), "--concurrency", "2",
    ]  # fmt: skip
    print("$ peerpool " + " ".join(command[3:]), flush=True)
    # stderr (the progress bars) goes straight to the terminal
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=1800)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"peerpool sync failed with exit code {done.returncode}")
    return done.stdout.strip().splitlines()


def build_chain(node: RegtestNode, blocks: int) -> None:
    maker = BlockMaker(node)
    node.generate(blocks)
    [coin] = maker.mine_coins(1)  # a coinbase to spend, and the 100 blocks that mature it
    started = time.monotonic()
    large = maker.make_block(coin, LARGE_BLOCK_SIZE, seed=2024)
    print(f"built block {large.hash_hex}: {large.size / 1e6:.1f} MB, {len(large.txids)} txs")
    maker.submit(large)
    print(f"submitted in {time.monotonic() - started:.1f} s (build included)")
    node.generate(10)


def verify(node: RegtestNode, blocks_dir: Path) -> int:
    stored = {entry.hash: entry for entry in read_index(blocks_dir)}
    height = node.block_count()
    failures = 0
    largest = None
    for h in range(height + 1):
        block_hash = node.rpc("getblockhash", h)
        entry = stored.get(block_hash)
        if entry is None or not verify_stored_block(blocks_dir, entry):
            print(f"height {h} {block_hash}: {'missing' if entry is None else 'MERKLE MISMATCH'}")
            failures += 1
        elif largest is None or entry.size > largest.size:
            largest = entry
    print(f"{height + 1 - failures} of {height + 1} blocks verified from their stored offsets")
    if largest is not None:
        print(
            f"largest: height {largest.height}, {largest.size / 1e6:.1f} MB, "
            f"{largest.tx_count} txs in {largest.num_chunks} chunks"
        )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=200, help="blocks mined with generate")
    parser.add_argument("--data", type=Path, help="keep the synced data here (default: temporary)")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="peerpool-demo-"))
    try:
        step("starting a Bitcoin SV regtest node")
        with RegtestNode(binary=ensure_bitcoind()) as node:
            print(f"node at {node.p2p_address} (RPC port {node.rpc_port})")
            step(f"mining {args.blocks} + 101 blocks and a {LARGE_BLOCK_SIZE / 1e6:.0f} MB block")
            build_chain(node, args.blocks)
            tip = f"tip {node.block_count()} {node.best_block_hash()}"
            print(f"node {tip}")

            step("peerpool sync")
            lines = run_sync(node, data)
            if lines[-1] != tip:
                raise SystemExit(f"sync ended at '{lines[-1]}', the node is at '{tip}'")

            step("verifying every stored block's merkle root from its offsets")
            if verify(node, data / "blocks.bsv-regtest"):
                raise SystemExit("verification failed")

            step("peerpool sync again (resumable: nothing left to fetch)")
            lines = run_sync(node, data)
            if "blocks: 0 downloaded" not in lines[0]:
                raise SystemExit("the second sync downloaded blocks again")
            step("peerpool index: the chain into LMDB, a lookup, a history, a reorg followed")
            demo_index.run(node, data, run_sync)
            step("stopping the node")
        print("demo OK")
        return 0
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
