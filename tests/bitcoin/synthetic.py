"""Builders of synthetic transactions, blocks and header chains for the tests
and benches of the Bitcoin kernels.

Serialisation follows Core's layout; CompactSize, txids and merkle roots come
from the pure-Python reference (tests/reference/bitcoin/), never from the
kernels under test, so a block built here is an independent oracle.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.reference import bitcoin as ref

DATA_DIR = Path(__file__).resolve().parents[2] / "../shared/data"
REGTEST_BITS = 0x207FFFFF  # regtest's powLimit: about every second nonce meets it
MAINNET_MAGIC = bytes.fromhex("f9beb4d9")
# Core's mainnet consensus.powLimit (chainparams.cpp)
MAINNET_POW_LIMIT = (1 << 224) - 1
BLOCK_FILES = [
    "blk_0_to_4.dat",
    "blk_3A.dat",
    "blk_4A.dat",
    "blk_5A.dat",
    "blocks1-256",
    "277647.dat",
]


# --- the real data ----------------------------------------------------------------


def blk_records(path: Path) -> list[bytes]:
    """The blocks of a file in blkNNNNN.dat layout (magic, length, block), read
    without the library's reader so that the reader has an oracle too."""
    raw = path.read_bytes()
    blocks, pos = [], 0
    while pos < len(raw):
        (length,) = struct.unpack_from("<I", raw, pos + 4)
        blocks.append(raw[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return blocks


def real_blocks() -> dict[str, bytes]:
    """Every block of ../shared/data by a readable name (265 of them)."""
    named: dict[str, bytes] = {}
    for name in BLOCK_FILES:
        for i, block in enumerate(blk_records(DATA_DIR / name)):
            named[f"{name}#{i}"] = block
    named["testnet_block.raw"] = (DATA_DIR / "testnet_block.raw").read_bytes()
    return named


def megatx() -> bytes:
    return (DATA_DIR / "megatx.bin").read_bytes()


# --- transactions ---------------------------------------------------------------------


@dataclass(frozen=True)
class TxIn:
    outpoint: bytes  # 36 bytes
    script: bytes
    sequence: int = 0xFFFFFFFF


def serialize_tx(
    inputs: Sequence[TxIn],
    outputs: Sequence[tuple[int, bytes]],
    witness: Sequence[Sequence[bytes]] | None = None,
    version: int = 2,
    lock_time: int = 0,
) -> bytes:
    """A transaction; with ``witness`` (one stack per input) in segwit form."""
    c = ref.write_compact_size
    parts = [struct.pack("<i", version)]
    if witness is not None:
        parts.append(b"\x00\x01")
    parts.append(c(len(inputs)))
    for i in inputs:
        parts += [i.outpoint, c(len(i.script)), i.script, struct.pack("<I", i.sequence)]
    parts.append(c(len(outputs)))
    for value, script in outputs:
        parts += [struct.pack("<q", value), c(len(script)), script]
    if witness is not None:
        assert len(witness) == len(inputs)
        for stack in witness:
            parts.append(c(len(stack)))
            for item in stack:
                parts += [c(len(item)), item]
    parts.append(struct.pack("<I", lock_time))
    return b"".join(parts)


def random_tx(rng: random.Random, *, segwit: bool = False, max_script: int = 120) -> bytes:
    """A small transaction with random counts and script sizes (some script
    lengths cross the 0xfd CompactSize boundary when max_script allows)."""
    inputs = [
        TxIn(rng.randbytes(36), rng.randbytes(rng.randint(0, max_script)), rng.getrandbits(32))
        for _ in range(rng.randint(1, 4))
    ]
    outputs = [
        (rng.getrandbits(50), rng.randbytes(rng.randint(0, max_script)))
        for _ in range(rng.randint(1, 4))
    ]
    witness = None
    if segwit:
        # empty stacks, small items and items over 252 bytes (3-byte lengths)
        witness = [
            [rng.randbytes(rng.choice([0, 1, 33, 72, 300])) for _ in range(rng.randint(0, 4))]
            for _ in inputs
        ]
    return serialize_tx(inputs, outputs, witness, lock_time=rng.getrandbits(32))


def sized_tx(size: int, fill: int = 0x51) -> bytes:
    """A one-input, one-output transaction of exactly ``size`` bytes (>= 85),
    its input script padding it out. Where the script length's CompactSize
    grows from 1 to 3 bytes, a longer output script covers the gap."""
    for out_len in (25, 26, 27):
        fixed = 4 + 1 + 36 + 4 + 1 + 8 + 1 + out_len + 4  # all but the input script and its length
        for length_bytes in (1, 3, 5):
            script_len = size - fixed - length_bytes
            if script_len >= 0 and len(ref.write_compact_size(script_len)) == length_bytes:
                inputs = [TxIn(bytes(36), bytes([fill]) * script_len)]
                tx = serialize_tx(inputs, [(1, bytes(out_len))])
                assert len(tx) == size
                return tx
    raise ValueError(f"no transaction of exactly {size} bytes")


# --- blocks -----------------------------------------------------------------------------


def header(
    merkle_root: bytes,
    prev_hash: bytes = bytes(32),
    bits: int = REGTEST_BITS,
    timestamp: int = 1_700_000_000,
    nonce: int = 0,
    version: int = 0x20000000,
) -> bytes:
    return struct.pack("<i32s32sIII", version, prev_hash, merkle_root, timestamp, bits, nonce)


def block(txs: Sequence[bytes], prev_hash: bytes = bytes(32)) -> bytes:
    """A block whose header carries the merkle root the reference computes."""
    root = ref.merkle_root([ref.txid(tx) for tx in txs])
    return header(root, prev_hash) + ref.write_compact_size(len(txs)) + b"".join(txs)


def repeated_block_layout(template: bytes, block_size: int) -> tuple[int, bytes]:
    """(transaction count, last transaction) of a block of ``block_size`` bytes
    made of copies of ``template`` and one last transaction that fills it exactly."""
    for count_len in (1, 3, 5, 9):
        n = (block_size - 80 - count_len - 64) // len(template) + 1
        if len(ref.write_compact_size(n)) == count_len:
            return n, sized_tx(block_size - 80 - count_len - (n - 1) * len(template))
    raise ValueError(f"no layout for {block_size} bytes")


def repeated_block_stream(
    template: bytes, block_size: int, piece_size: int, merkle_root: bytes = bytes(32)
) -> Iterator[bytes]:
    """That block in pieces of ``piece_size`` bytes, generated as it is read
    and never held whole (a block of several GiB costs a few MiB)."""
    n, last = repeated_block_layout(template, block_size)
    pending = bytearray(header(merkle_root) + ref.write_compact_size(n))
    for i in range(n):
        pending += template if i < n - 1 else last
        while len(pending) >= piece_size:
            yield bytes(pending[:piece_size])
            del pending[:piece_size]
    if pending:
        yield bytes(pending)


# --- header chains ------------------------------------------------------------------------


def regtest_chain(count: int, seed: int = 1) -> bytes:
    """``count`` linked headers at regtest difficulty (bits 0x207fffff), their
    nonces ground with hashlib: a valid chain for the batch check."""
    rng = random.Random(seed)
    target = ref.set_compact(REGTEST_BITS)[0]
    out = bytearray()
    prev = bytes(32)
    for height in range(count):
        prefix = header(rng.randbytes(32), prev, timestamp=1_600_000_000 + 600 * height)[:76]
        nonce = 0
        while True:
            raw = prefix + struct.pack("<I", nonce)
            h = ref.sha256d(raw)
            if int.from_bytes(h, "little") <= target:
                break
            nonce += 1
        out += raw
        prev = h
    return bytes(out)
