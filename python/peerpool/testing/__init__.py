"""Test support that uses real components: a Bitcoin SV regtest node and real blocks for it.

Used by peerpool's integration tests and ``make demo``; applications may use it
for their own tests (``peerpool node install`` puts the node binary into the user
cache; ``peerpool node start`` runs one from the shell). Nothing here is imported
by the library itself.

    with RegtestNode() as node:          # 127.0.0.1 only, free ports, temporary datadir
        maker = BlockMaker(node)
        (coin,) = maker.mine_coins(1)    # an OP_TRUE coin, matured by 100 blocks
        block = maker.make_block(coin, 50_000_000)
        maker.submit(block)              # node.best_block_hash() == block.hash_hex
"""

from peerpool.testing.blocks import BlockMaker, BuiltBlock, ChainTip, build_block
from peerpool.testing.node_install import install_bitcoind
from peerpool.testing.regtest import RegtestNode, ensure_bitcoind, find_bitcoind, free_port
from peerpool.testing.transactions import Coin, invalid_tx, malformed_tx, mempool_tx

__all__ = [
    "BlockMaker",
    "BuiltBlock",
    "ChainTip",
    "Coin",
    "RegtestNode",
    "build_block",
    "ensure_bitcoind",
    "find_bitcoind",
    "free_port",
    "install_bitcoind",
    "invalid_tx",
    "malformed_tx",
    "mempool_tx",
]
