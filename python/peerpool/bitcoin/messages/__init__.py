"""The codec layer: payload codecs for the Bitcoin / Bitcoin SV messages peerpool speaks.

Each message is a frozen dataclass with ``encode() -> bytes`` and a
``decode(payload)`` classmethod; decoding is strict and bounded and raises
:class:`peerpool.errors.MalformedMessageError` (see ``messages.wire``). The
``block`` payloads go to the chunk splitter, so they are not decoded here.

``decode_message(command, payload)`` picks the codec by command; a command we
do not know comes back as :class:`UnknownMessage` (peers may send new message
types, and the protocol says to ignore them rather than disconnect).

Modules: ``wire`` (the primitive readers and writers and the ``Message`` base
every codec builds on), ``control`` (version handshake, ping, feature
negotiation), ``inventory`` (inv, getdata, headers, getheaders, tx), ``addr``
(addr and addrv2), ``bsv`` (Bitcoin SV's protoconf, authch, reject), and
``framing``: the 24-byte (or BSV's extended 44-byte) envelope around every
payload, which lives here because it is the codec layer's outer half: a
message is framed bytes around a payload codec, and nothing above this package
(the sans-I/O protocol, the clients) should need a second place to look for
how bytes on the wire become messages. ``framing`` is the Rust kernel's
interface and does not depend on the payload codecs (nor they on it): a
caller can frame bytes it encoded itself, or decode payloads it unframed
elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Final

from peerpool.bitcoin.messages.addr import (
    MAX_ADDR_ENTRIES,
    Addr,
    AddrV2,
    AddrV2Entry,
    NetworkAddress,
    TimedAddress,
)
from peerpool.bitcoin.messages.bsv import AuthCh, Protoconf, Reject, RejectCode
from peerpool.bitcoin.messages.control import (
    NODE_NETWORK,
    PROTOCOL_VERSION,
    FeeFilter,
    GetAddr,
    MemPool,
    Ping,
    Pong,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    VerAck,
    Version,
    WtxidRelay,
)
from peerpool.bitcoin.messages.inventory import (
    MAX_HEADERS,
    MAX_INV_ENTRIES,
    MAX_LOCATOR_HASHES,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InventoryList,
    InvType,
    InvVector,
    NotFound,
    Tx,
    max_inv_entries_for_payload,
)
from peerpool.bitcoin.messages.wire import Message

__all__ = [
    "MAX_ADDR_ENTRIES",
    "MAX_HEADERS",
    "MAX_INV_ENTRIES",
    "MAX_LOCATOR_HASHES",
    "MESSAGE_TYPES",
    "NODE_NETWORK",
    "PROTOCOL_VERSION",
    "Addr",
    "AddrV2",
    "AddrV2Entry",
    "AuthCh",
    "FeeFilter",
    "GetAddr",
    "GetBlocks",
    "GetData",
    "GetHeaders",
    "Headers",
    "Inv",
    "InvType",
    "InvVector",
    "InventoryList",
    "MemPool",
    "Message",
    "NetworkAddress",
    "NotFound",
    "Ping",
    "Pong",
    "Protoconf",
    "Reject",
    "RejectCode",
    "SendAddrV2",
    "SendCmpct",
    "SendHeaders",
    "TimedAddress",
    "Tx",
    "UnknownMessage",
    "VerAck",
    "Version",
    "WtxidRelay",
    "decode_message",
    "max_inv_entries_for_payload",
]


@dataclass(frozen=True)
class UnknownMessage(Message):
    """A command with no codec here; the payload is kept as it came."""

    COMMAND: ClassVar[str] = ""
    command: str
    payload: bytes

    def encode(self) -> bytes:
        return self.payload


_CODECS: Final[tuple[type[Message], ...]] = (
    Version, VerAck, Ping, Pong, SendHeaders, GetHeaders, Headers, GetBlocks, Inv, GetData,
    NotFound, Tx, MemPool, GetAddr, Addr, AddrV2, SendAddrV2, FeeFilter, SendCmpct, WtxidRelay,
    Protoconf, Reject, AuthCh,
)  # fmt: skip

MESSAGE_TYPES: Final[Mapping[str, type[Message]]] = MappingProxyType(
    {codec.COMMAND: codec for codec in _CODECS}
)


def decode_message(
    command: str, payload: bytes, *, max_inv_entries: int = MAX_INV_ENTRIES
) -> Message:
    """Decode ``payload`` as the message ``command`` names.

    ``max_inv_entries`` bounds inv/getdata/notfound; raise it for a BSV peer
    that advertised a larger payload in protoconf (``max_inv_entries_for_payload``).
    """
    codec = MESSAGE_TYPES.get(command)
    if codec is None:
        return UnknownMessage(command, bytes(payload))
    if issubclass(codec, InventoryList):
        return codec.decode(payload, max_entries=max_inv_entries)
    return codec.decode(payload)
