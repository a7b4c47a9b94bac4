"""Inventory and chain messages: inv/getdata/notfound, getheaders/getblocks, headers, tx.

Hashes are 32 bytes in internal (wire) order; reverse them for display.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final, NamedTuple, TypeVar

from peerpool.bitcoin.messages.wire import (
    HASH_SIZE,
    Message,
    PayloadReader,
    check_hash,
    check_uint,
    put_compact_size,
    put_u32,
)
from peerpool.bitcoin.networks import sha256d
from peerpool.errors import InputError

# MAX_INV_SZ in Bitcoin Core (src/net_processing.cpp) and in Bitcoin SV for
# peers that have not sent protoconf: at most 50,000 entries per inv/getdata.
MAX_INV_ENTRIES: Final = 50_000

# MAX_HEADERS_RESULTS in Bitcoin Core (src/net_processing.h) and Bitcoin SV
# (src/validation.h): at most 2,000 headers per headers message.
MAX_HEADERS: Final = 2_000

# MAX_LOCATOR_SZ in Bitcoin Core (src/net_processing.cpp): at most 101 hashes
# in a getheaders/getblocks locator (about log2(height) + 10 are ever needed).
MAX_LOCATOR_HASHES: Final = 101

BLOCK_HEADER_SIZE: Final = 80
INV_ENTRY_SIZE: Final = 4 + HASH_SIZE
_INV_ENTRY: Final = struct.Struct("<I32s")

# The smallest possible transaction: version, no inputs, no outputs, lock time.
MIN_TRANSACTION_SIZE: Final = 10


def max_inv_entries_for_payload(max_payload_length: int) -> int:
    """How many inv entries fit in a payload of ``max_payload_length`` bytes.

    Bitcoin SV lifts MAX_INV_SZ for peers that exchanged protoconf: the limit
    becomes what fits in the advertised payload, assuming a 9-byte count as
    CInv::estimateMaxInvElements does (2 MiB gives 58,254 entries, the figure in
    the protoconf specification).
    """
    return max(0, (max_payload_length - 8) // INV_ENTRY_SIZE)


class InvType(IntEnum):
    """Inventory types (Bitcoin Core src/protocol.h; Bitcoin SV src/protocol.h)."""

    ERROR = 0
    TX = 1
    BLOCK = 2
    FILTERED_BLOCK = 3  # BIP37
    CMPCT_BLOCK = 4  # BIP152
    WTX = 5  # BIP339 (BTC); Bitcoin SV uses 5 for MSG_DATAREF_TX (miner id)
    WITNESS_TX = 0x40000001  # BIP144 (BTC)
    WITNESS_BLOCK = 0x40000002  # BIP144 (BTC)


class InvVector(NamedTuple):
    """One inventory entry. ``kind`` stays a plain int: an unknown type is not an error."""

    kind: int
    hash: bytes

    @property
    def hash_hex(self) -> str:
        """The hash as explorers show it (byte-reversed hex)."""
        return display_hex(self.hash)

    def __repr__(self) -> str:
        try:
            kind = InvType(self.kind).name
        except ValueError:
            kind = str(self.kind)
        return f"InvVector({kind}, {display_hex(self.hash)})"


def display_hex(item_hash: bytes) -> str:
    """A hash in display order: byte-reversed hex, as explorers and RPC show it."""
    return bytes(item_hash)[::-1].hex()


#: Entries an inventory list's repr names before it says how many more there are.
_REPR_ITEMS = 10


_ListT = TypeVar("_ListT", bound="InventoryList")


@dataclass(frozen=True)
class InventoryList(Message):
    """The shape shared by inv, getdata and notfound: a list of inventory entries."""

    items: tuple[InvVector, ...]

    def __repr__(self) -> str:
        shown = ", ".join(repr(item) for item in self.items[:_REPR_ITEMS])
        more = len(self.items) - _REPR_ITEMS
        tail = f", ... {more} more" if more > 0 else ""
        return f"{type(self).__name__}([{shown}{tail}])"

    def __post_init__(self) -> None:
        for kind, item_hash in self.items:
            check_uint(kind, 32, "inventory type")
            check_hash(item_hash, "inventory hash")

    def encode(self) -> bytes:
        parts = [put_compact_size(len(self.items))]
        parts.extend(_INV_ENTRY.pack(kind, item_hash) for kind, item_hash in self.items)
        return b"".join(parts)

    @classmethod
    def decode(cls: type[_ListT], payload: bytes, max_entries: int = MAX_INV_ENTRIES) -> _ListT:
        """``max_entries``: MAX_INV_ENTRIES, or for a BSV peer that advertised a
        larger payload with protoconf, ``max_inv_entries_for_payload(its maximum)``."""
        reader = PayloadReader(cls.COMMAND, payload)
        count = reader.count(max_entries, INV_ENTRY_SIZE, "inventory entries")
        body = reader.take(count * INV_ENTRY_SIZE, "inventory entries")
        reader.end()
        return cls(tuple(InvVector._make(entry) for entry in _INV_ENTRY.iter_unpack(body)))


@dataclass(frozen=True, repr=False)
class Inv(InventoryList):
    COMMAND: ClassVar[str] = "inv"


@dataclass(frozen=True, repr=False)
class GetData(InventoryList):
    COMMAND: ClassVar[str] = "getdata"


@dataclass(frozen=True, repr=False)
class NotFound(InventoryList):
    COMMAND: ClassVar[str] = "notfound"


_LocatorT = TypeVar("_LocatorT", bound="_LocatorMessage")


@dataclass(frozen=True)
class _LocatorMessage(Message):
    """A block locator (newest first) and a stop hash (all zeros: as many as allowed)."""

    version: int
    locator: tuple[bytes, ...]
    hash_stop: bytes = bytes(HASH_SIZE)

    def __repr__(self) -> str:
        first = display_hex(self.locator[0]) if self.locator else "none"
        stop = display_hex(self.hash_stop) if any(self.hash_stop) else "none"
        return (
            f"{type(self).__name__}(version={self.version}, {len(self.locator)} locator "
            f"hashes from {first}, stop={stop})"
        )

    def __post_init__(self) -> None:
        check_uint(self.version, 32, "version")
        for locator_hash in self.locator:
            check_hash(locator_hash, "locator hash")
        check_hash(self.hash_stop, "stop hash")

    def encode(self) -> bytes:
        return b"".join(
            (
                put_u32(self.version),
                put_compact_size(len(self.locator)),
                *self.locator,
                self.hash_stop,
            )
        )

    @classmethod
    def decode(cls: type[_LocatorT], payload: bytes) -> _LocatorT:
        reader = PayloadReader(cls.COMMAND, payload)
        version = reader.u32("version")
        count = reader.count(MAX_LOCATOR_HASHES, HASH_SIZE, "locator hashes")
        locator = tuple(reader.hash("locator hash") for _ in range(count))
        hash_stop = reader.hash("stop hash")
        reader.end()
        return cls(version, locator, hash_stop)


@dataclass(frozen=True, repr=False)
class GetHeaders(_LocatorMessage):
    COMMAND: ClassVar[str] = "getheaders"


@dataclass(frozen=True, repr=False)
class GetBlocks(_LocatorMessage):
    COMMAND: ClassVar[str] = "getblocks"


@dataclass(frozen=True)
class Headers(Message):
    """``headers``: ``headers`` holds the 80-byte headers back to back, the form
    the header kernels take; on the wire each is followed by a transaction count
    that must be zero."""

    COMMAND: ClassVar[str] = "headers"
    headers: bytes

    def __repr__(self) -> str:
        if not self.count:
            return "Headers(0 headers)"
        first = display_hex(sha256d(self.header(0)))
        last = display_hex(sha256d(self.header(self.count - 1)))
        return f"Headers({self.count} headers, {first} .. {last})"

    def __post_init__(self) -> None:
        if len(self.headers) % BLOCK_HEADER_SIZE:
            raise InputError(f"headers must be a multiple of {BLOCK_HEADER_SIZE} bytes")

    @property
    def count(self) -> int:
        return len(self.headers) // BLOCK_HEADER_SIZE

    def header(self, index: int) -> bytes:
        if not 0 <= index < self.count:
            raise IndexError(index)
        start = index * BLOCK_HEADER_SIZE
        return self.headers[start : start + BLOCK_HEADER_SIZE]

    def iter_headers(self) -> Iterator[bytes]:
        for start in range(0, len(self.headers), BLOCK_HEADER_SIZE):
            yield self.headers[start : start + BLOCK_HEADER_SIZE]

    def encode(self) -> bytes:
        parts = [put_compact_size(self.count)]
        for start in range(0, len(self.headers), BLOCK_HEADER_SIZE):
            parts.append(self.headers[start : start + BLOCK_HEADER_SIZE])
            parts.append(b"\x00")
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Headers:
        reader = PayloadReader(cls.COMMAND, payload)
        count = reader.count(MAX_HEADERS, BLOCK_HEADER_SIZE + 1, "headers")
        headers = []
        for _ in range(count):
            headers.append(reader.take(BLOCK_HEADER_SIZE, "header"))
            if reader.u8("transaction count") != 0:
                raise reader.error("a header's transaction count must be 0", reader.offset - 1)
        reader.end()
        return cls(b"".join(headers))


@dataclass(frozen=True)
class Tx(Message):
    """``tx``: the raw transaction, not parsed here (the transaction scanner does that)."""

    COMMAND: ClassVar[str] = "tx"
    raw: bytes

    def __repr__(self) -> str:
        return f"Tx({display_hex(sha256d(self.raw))}, {len(self.raw)} bytes)"

    def __post_init__(self) -> None:
        if len(self.raw) < MIN_TRANSACTION_SIZE:
            raise InputError(f"a transaction has at least {MIN_TRANSACTION_SIZE} bytes")

    def encode(self) -> bytes:
        return self.raw

    @classmethod
    def decode(cls, payload: bytes) -> Tx:
        if len(payload) < MIN_TRANSACTION_SIZE:
            raise PayloadReader(cls.COMMAND, payload).error(
                f"{len(payload)} bytes cannot hold a transaction (at least {MIN_TRANSACTION_SIZE})"
            )
        return cls(bytes(payload))
