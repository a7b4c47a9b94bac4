"""Transactions that a regtest node accepts without any keys.

Outputs locked with OP_TRUE (0x51) are spent by an input with an empty
unlocking script, so nothing needs signing. Coinbases pay such outputs; the
padding that makes transactions a chosen size is an unspendable
OP_FALSE OP_RETURN data output, which the node does not keep in its UTXO set.

Serialization is the original (pre-segwit) one, which is also Bitcoin SV's.
Hashes are in internal byte order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from peerpool.encoding import compact_size, sha256d
from peerpool.errors import InputError

OP_FALSE: Final = 0x00
OP_TRUE: Final = 0x51
OP_RETURN: Final = 0x6A
OP_TRUE_SCRIPT: Final = bytes([OP_TRUE])

COIN: Final = 100_000_000
COINBASE_MATURITY: Final = 100  # a coinbase output is spendable 100 blocks later

# MAX_TX_SIZE_CONSENSUS_BEFORE_GENESIS in Bitcoin SV (src/consensus/consensus.h):
# below the Genesis height (10,000 on regtest) a transaction is at most 1 MB.
MAX_TX_SIZE_BEFORE_GENESIS: Final = 1_000_000

_FINAL_SEQUENCE: Final = b"\xff\xff\xff\xff"
_NULL_OUTPOINT: Final = bytes(32) + b"\xff\xff\xff\xff"


@dataclass(frozen=True)
class Coin:
    """A spendable OP_TRUE output: the transaction id, output index and value."""

    txid: bytes
    vout: int
    value: int

    @property
    def txid_hex(self) -> str:
        """The coin's txid as the node displays it (byte-reversed hex)."""
        return self.txid[::-1].hex()


def push_prefix(size: int) -> bytes:
    """The opcode (and length) that pushes ``size`` bytes: the smallest that fits."""
    if size < 0x4C:
        return bytes([size])
    if size <= 0xFF:
        return b"\x4c" + bytes([size])  # OP_PUSHDATA1
    if size <= 0xFFFF:
        return b"\x4d" + struct.pack("<H", size)  # OP_PUSHDATA2
    return b"\x4e" + struct.pack("<I", size)  # OP_PUSHDATA4


def push_data(data: bytes) -> bytes:
    return push_prefix(len(data)) + data


def script_number(value: int) -> bytes:
    """A non-negative integer as a minimal script number (little-endian, sign bit clear)."""
    if value < 0:
        raise InputError("script numbers here are non-negative")
    out = bytearray()
    while value:
        out.append(value & 0xFF)
        value >>= 8
    if out and out[-1] & 0x80:
        out.append(0)
    return bytes(out)


def output(value: int, script: bytes) -> bytes:
    return struct.pack("<q", value) + compact_size(len(script)) + script


def serialize_tx(inputs: list[bytes], outputs: list[bytes], version: int = 1) -> bytes:
    """A transaction from already-serialized inputs and outputs (lock time 0)."""
    return b"".join(
        (
            struct.pack("<i", version),
            compact_size(len(inputs)),
            *inputs,
            compact_size(len(outputs)),
            *outputs,
            b"\x00\x00\x00\x00",
        )
    )


def op_true_input(coin: Coin) -> bytes:
    """An input spending ``coin`` with an empty unlocking script."""
    return coin.txid + struct.pack("<I", coin.vout) + b"\x00" + _FINAL_SEQUENCE


def txid(raw_tx: bytes) -> bytes:
    return sha256d(raw_tx)


def block_subsidy(height: int, halving_interval: int) -> int:
    """New coins in a block at ``height``: 50 coins halved every ``halving_interval`` blocks."""
    halvings = height // halving_interval
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


def coinbase_tx(height: int, value: int, outputs: int, tag: bytes = b"/peerpool/") -> bytes:
    """A coinbase paying ``value`` split over ``outputs`` OP_TRUE outputs.

    The height opens the unlocking script as BIP34 asks (regtest does not enforce
    it), which also makes every coinbase, and so its txid, unique.
    """
    if outputs < 1:
        raise InputError("a coinbase needs at least one output")
    script_sig = push_data(script_number(height)) + push_data(tag)
    if not 2 <= len(script_sig) <= 100:  # the consensus bounds of a coinbase script
        raise InputError("coinbase tag too long")
    coinbase_input = _NULL_OUTPOINT + compact_size(len(script_sig)) + script_sig + _FINAL_SEQUENCE
    values = coinbase_values(value, outputs)
    return serialize_tx([coinbase_input], [output(v, OP_TRUE_SCRIPT) for v in values])


def coinbase_values(value: int, outputs: int) -> list[int]:
    """How ``coinbase_tx`` splits ``value``: equal shares, the remainder in the first."""
    share, remainder = divmod(value, outputs)
    return [share + remainder] + [share] * (outputs - 1)


def spend_tx(coin: Coin, fee: int = 0, data: bytes = b"") -> bytes:
    """Spend ``coin`` to one OP_TRUE output (``coin.value - fee``), plus an
    OP_FALSE OP_RETURN output carrying ``data`` when ``data`` is not empty."""
    if not 0 <= fee <= coin.value:
        raise InputError(f"fee {fee} not within the coin's value {coin.value}")
    outputs = [output(coin.value - fee, OP_TRUE_SCRIPT)]
    if data:
        outputs.append(output(0, bytes([OP_FALSE, OP_RETURN]) + push_data(data)))
    return serialize_tx([op_true_input(coin)], outputs)


def mempool_tx(coin: Coin, fee: int = 1_000) -> bytes:
    """A transaction the node accepts into its mempool (``sendrawtransaction``
    or a P2P ``tx``): a mature ``coin`` spent with a fee well above the relay minimum."""
    return spend_tx(coin, fee)


def invalid_tx(coin: Coin) -> bytes:
    """Well-formed but invalid: it pays out more than it spends. The node
    answers ``reject`` (code 0x10, "bad-txns-in-belowout") with its txid."""
    return serialize_tx([op_true_input(coin)], [output(coin.value + 1, OP_TRUE_SCRIPT)])


def malformed_tx() -> bytes:
    """Bytes that do not parse as a transaction (an input count with no input
    after it). The node answers ``reject`` (code 0x01, "error parsing message")."""
    return b"\x01\x00\x00\x00\x01"
