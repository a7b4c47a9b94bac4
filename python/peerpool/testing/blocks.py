"""Real blocks for the regtest node, of any size, built here and submitted over RPC.

A large block is one long chain of transactions: each spends the OP_TRUE
output of the one before (zero fee) and pads itself to a size drawn from a
seeded generator with an OP_RETURN output. Below the Genesis height every
transaction must stay under 1 MB, so tens of megabytes mean tens of thousands
of transactions, which is also what indexers meet on the real network.

``build_block`` is pure (no node): give it the tip and a coin. ``BlockMaker``
does the node side: read the tip, mine coins to spend, submit.
The block is built in one preallocated bytearray; txids are computed with
hashlib, independently of the Rust kernels the tests check against it.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from peerpool.bitcoin.headers import bits_to_target
from peerpool.encoding import compact_size, sha256d
from peerpool.errors import InputError, RegtestError
from peerpool.testing.regtest import RegtestNode
from peerpool.testing.transactions import (
    COINBASE_MATURITY,
    MAX_TX_SIZE_BEFORE_GENESIS,
    OP_FALSE,
    OP_RETURN,
    OP_TRUE_SCRIPT,
    Coin,
    block_subsidy,
    coinbase_tx,
    coinbase_values,
    op_true_input,
    output,
    push_prefix,
)

BLOCK_VERSION: Final = 0x20000000
HEADER_SIZE: Final = 80

# the fixed part of a padding transaction: version, one OP_TRUE input, two
# outputs (OP_TRUE, then OP_FALSE OP_RETURN <pad>) and the lock time
_PAD_TX_FIXED: Final = 4 + 1 + 41 + 1 + 10 + 8 + 4
MIN_PAD_TX_SIZE: Final = _PAD_TX_FIXED + 1 + 2 + 1  # an empty push


def merkle_root(txids: Sequence[bytes]) -> bytes:
    """Bitcoin's merkle root: pairwise sha256d, an odd last node paired with itself."""
    if not txids:
        raise InputError("a block has at least one transaction")
    level = list(txids)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def grind_header(prefix: bytes, bits: int) -> bytes:
    """Complete a 76-byte header prefix with the first nonce that meets ``bits``."""
    target = bits_to_target(bits)
    for nonce in range(1 << 32):
        header = prefix + struct.pack("<I", nonce)
        if int.from_bytes(sha256d(header), "little") <= target:
            return header
    raise RegtestError("no nonce meets the target; bits too hard for grinding")


@dataclass(frozen=True)
class ChainTip:
    """What a new block needs from its parent. ``hash`` is in internal order."""

    hash: bytes
    height: int
    time: int
    bits: int


@dataclass(frozen=True)
class BuiltBlock:
    """A block and the facts a test checks against: txids and where each transaction starts."""

    raw: bytearray
    height: int
    txids: tuple[bytes, ...]
    tx_offsets: npt.NDArray[np.uint64]
    change: Coin | None  # the chain's last OP_TRUE output, spendable once this block is in

    @property
    def header(self) -> bytes:
        """The block's 80-byte header."""
        return bytes(self.raw[:HEADER_SIZE])

    @property
    def hash(self) -> bytes:
        """The block hash (internal byte order)."""
        return sha256d(self.header)

    @property
    def hash_hex(self) -> str:
        """The block hash as the node displays it (byte-reversed hex)."""
        return self.hash[::-1].hex()

    @property
    def size(self) -> int:
        """The block's size in bytes."""
        return len(self.raw)


def pad_tx_size(pad: int) -> int:
    """The serialized size of a padding transaction carrying ``pad`` data bytes."""
    script = 2 + len(push_prefix(pad)) + pad
    return _PAD_TX_FIXED + len(compact_size(script)) + script


def _pad_for_size(size: int) -> int:
    """The largest pad whose transaction is at most ``size`` bytes."""
    pad = max(0, size - _PAD_TX_FIXED - 3)
    while pad and pad_tx_size(pad) > size:
        pad -= 1
    return pad


def _plan_sizes(budget: int, min_size: int, max_size: int, seed: int) -> list[int]:
    """Pad lengths of transactions whose sizes, drawn in [min_size, max_size], add up to ``budget``."""
    draw = random.Random(seed)
    pads, total = [], 0
    while total < budget:
        pad = _pad_for_size(draw.randint(min_size, max_size))
        pads.append(pad)
        total += pad_tx_size(pad)
    return pads


def build_block(
    tip: ChainTip,
    spend: Coin | None = None,
    target_size: int = 0,
    *,
    halving_interval: int = 150,
    coinbase_outputs: int = 1,
    min_tx_size: int = 200,
    max_tx_size: int = 2_000,
    seed: int = 0,
    now: int | None = None,
) -> BuiltBlock:
    """A block on ``tip`` of at least ``target_size`` bytes (or coinbase-only
    when ``spend`` is None), its coinbase paying ``coinbase_outputs`` OP_TRUE
    outputs. The time is the tip's plus one or the clock, whichever is later.
    """
    if not MIN_PAD_TX_SIZE <= min_tx_size <= max_tx_size < MAX_TX_SIZE_BEFORE_GENESIS:
        raise InputError(
            f"transaction sizes must satisfy {MIN_PAD_TX_SIZE} <= min <= max "
            f"< {MAX_TX_SIZE_BEFORE_GENESIS}"
        )
    height = tip.height + 1
    coinbase = coinbase_tx(height, block_subsidy(height, halving_interval), coinbase_outputs)
    pads: list[int] = []
    if spend is not None:
        # the transaction count takes at least one byte: the block reaches the target
        budget = target_size - HEADER_SIZE - 1 - len(coinbase)
        pads = _plan_sizes(max(budget, 1), min_tx_size, max_tx_size, seed)
    count = 1 + len(pads)

    sizes = [len(coinbase)] + [pad_tx_size(pad) for pad in pads]
    body_start = HEADER_SIZE + len(compact_size(count))
    offsets = np.empty(count, dtype=np.uint64)
    offsets[0] = body_start
    if count > 1:
        offsets[1:] = body_start + np.cumsum(np.asarray(sizes[:-1], dtype=np.uint64))
    raw = bytearray(body_start + sum(sizes))
    raw[HEADER_SIZE:body_start] = compact_size(count)
    raw[body_start : body_start + len(coinbase)] = coinbase
    txids = [sha256d(coinbase)]

    change = None
    if spend is not None:
        # the padding bytes: one seeded random pool, sliced at varying places
        pool = random.Random(seed ^ 0x5EED).randbytes(max(pads) + 4096)
        keep = output(spend.value, OP_TRUE_SCRIPT)
        pad_prefix = struct.pack("<i", 1) + b"\x01"
        previous = spend
        for index, pad in enumerate(pads, start=1):
            start = (index * 7919) % 4096
            script = bytes([OP_FALSE, OP_RETURN]) + push_prefix(pad) + pool[start : start + pad]
            tx = b"".join(
                (pad_prefix, op_true_input(previous), b"\x02", keep, output(0, script), bytes(4))
            )
            at = int(offsets[index])
            raw[at : at + len(tx)] = tx
            txids.append(sha256d(tx))
            previous = Coin(txids[-1], 0, spend.value)
        change = previous

    prefix = struct.pack(
        "<i32s32sII",
        BLOCK_VERSION,
        tip.hash,
        merkle_root(txids),
        max(tip.time + 1, int(time.time()) if now is None else now),
        tip.bits,
    )
    raw[:HEADER_SIZE] = grind_header(prefix, tip.bits)
    return BuiltBlock(raw, height, tuple(txids), offsets, change)


class BlockMaker:
    """Builds blocks on the node's tip and submits them."""

    def __init__(self, node: RegtestNode) -> None:
        self.node = node
        self.halving_interval = node.network.subsidy_halving_interval

    def tip(self) -> ChainTip:
        """The node's best block now: hash (internal byte order), height, time and bits.

        Raises:
            peerpool.errors.RpcError: the node answered the RPC with an error.
            peerpool.errors.RegtestError: the node cannot be reached.
        """
        header = self.node.tip_header()
        return ChainTip(
            hash=bytes.fromhex(header["hash"])[::-1],
            height=int(header["height"]),
            time=int(header["time"]),
            bits=int(header["bits"], 16),
        )

    def submit(self, block: BuiltBlock) -> str:
        """Submit ``block``; returns its hash. Raises BlockRejectedError if refused."""
        return self.node.submit_block(block.raw)

    def mine_coins(self, count: int, mature: bool = True) -> list[Coin]:
        """Mine a block whose coinbase pays ``count`` OP_TRUE coins, then (if
        ``mature``) the 100 blocks after which they can be spent."""
        block = build_block(
            self.tip(), coinbase_outputs=count, halving_interval=self.halving_interval
        )
        self.submit(block)
        if mature:
            self.node.generate(COINBASE_MATURITY)
        values = coinbase_values(block_subsidy(block.height, self.halving_interval), count)
        return [Coin(block.txids[0], vout, value) for vout, value in enumerate(values)]

    def make_block(
        self,
        spend: Coin,
        target_size: int,
        *,
        min_tx_size: int = 200,
        max_tx_size: int = 2_000,
        seed: int = 0,
    ) -> BuiltBlock:
        """Build (without submitting) a block of about ``target_size`` bytes spending ``spend``."""
        return build_block(
            self.tip(),
            spend,
            target_size,
            halving_interval=self.halving_interval,
            min_tx_size=min_tx_size,
            max_tx_size=max_tx_size,
            seed=seed,
        )
