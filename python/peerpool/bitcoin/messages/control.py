"""Connection control: the handshake, keepalive and feature announcements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final, TypeVar

from peerpool.bitcoin.messages.addr import NetworkAddress
from peerpool.bitcoin.messages.wire import (
    Message,
    PayloadReader,
    check_int,
    check_max_len,
    check_uint,
    put_i32,
    put_i64,
    put_u64,
    put_var_bytes,
    put_var_str,
)
from peerpool.errors import InputError

# The protocol version both Bitcoin SV 1.0.x and Bitcoin Core (0.21 onwards)
# announce; the regtest node's getnetworkinfo reports "protocolversion": 70016.
PROTOCOL_VERSION: Final = 70016

# MAX_SUBVERSION_LENGTH in Bitcoin Core (src/net_processing.h) and Bitcoin SV
# (src/net/net.h): the user agent of a version message.
MAX_USER_AGENT_LENGTH: Final = 256

# AssociationID::MAX_ASSOCIATION_ID_LENGTH in Bitcoin SV (src/net/association_id.h):
# a type byte and up to 128 bytes of id, sent after the relay flag by BSV 1.0.x.
MAX_ASSOCIATION_ID_LENGTH: Final = 129

NODE_NETWORK: Final = 1  # service bit: serves the full block chain


@dataclass(frozen=True)
class Version(Message):
    """``version``. ``relay`` (BIP37) and BSV's ``association_id`` are optional
    trailing fields: None means absent. An association id needs the relay flag
    before it, because fields can only be left off at the end."""

    COMMAND: ClassVar[str] = "version"
    version: int
    services: int
    timestamp: int
    receiver: NetworkAddress
    sender: NetworkAddress
    nonce: int
    user_agent: str
    start_height: int
    relay: bool | None = True
    association_id: bytes | None = None

    def __post_init__(self) -> None:
        check_int(self.version, 32, "version")
        check_uint(self.services, 64, "services")
        check_int(self.timestamp, 64, "timestamp")
        check_uint(self.nonce, 64, "nonce")
        check_max_len(self.user_agent, MAX_USER_AGENT_LENGTH, "user agent")
        check_int(self.start_height, 32, "start height")
        if self.association_id is not None:
            check_max_len(self.association_id, MAX_ASSOCIATION_ID_LENGTH, "association id")
            if self.relay is None:
                raise InputError("an association id needs the relay flag before it")
        self.receiver.encode()  # validates the address fields
        self.sender.encode()

    def encode(self) -> bytes:
        parts = [
            put_i32(self.version),
            put_u64(self.services),
            put_i64(self.timestamp),
            self.receiver.encode(),
            self.sender.encode(),
            put_u64(self.nonce),
            put_var_str(self.user_agent),
            put_i32(self.start_height),
        ]
        if self.relay is not None:
            parts.append(b"\x01" if self.relay else b"\x00")
        if self.association_id is not None:
            parts.append(put_var_bytes(self.association_id))
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Version:
        reader = PayloadReader(cls.COMMAND, payload)
        version = reader.i32("version")
        services = reader.u64("services")
        timestamp = reader.i64("timestamp")
        receiver = NetworkAddress.read(reader, "receiver address")
        # Every field up to the start height has been sent since protocol 209;
        # the peers we talk to are all far newer, so these are required.
        sender = NetworkAddress.read(reader, "sender address")
        nonce = reader.u64("nonce")
        user_agent = reader.var_str(MAX_USER_AGENT_LENGTH, "user agent")
        start_height = reader.i32("start height")
        relay = reader.boolean("relay flag") if reader.remaining else None
        association_id = None
        if reader.remaining:
            association_id = reader.var_bytes(MAX_ASSOCIATION_ID_LENGTH, "association id")
        reader.end()
        return cls(
            version, services, timestamp, receiver, sender, nonce, user_agent, start_height,
            relay, association_id,
        )  # fmt: skip


_EmptyT = TypeVar("_EmptyT", bound="_EmptyMessage")


@dataclass(frozen=True)
class _EmptyMessage(Message):
    """A message whose payload must be empty."""

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls: type[_EmptyT], payload: bytes) -> _EmptyT:
        PayloadReader(cls.COMMAND, payload).end()
        return cls()


@dataclass(frozen=True)
class VerAck(_EmptyMessage):
    COMMAND: ClassVar[str] = "verack"


@dataclass(frozen=True)
class SendHeaders(_EmptyMessage):
    """BIP130: announce new blocks with ``headers`` rather than ``inv``."""

    COMMAND: ClassVar[str] = "sendheaders"


@dataclass(frozen=True)
class MemPool(_EmptyMessage):
    """BIP35: ask for an ``inv`` of the peer's mempool."""

    COMMAND: ClassVar[str] = "mempool"


@dataclass(frozen=True)
class GetAddr(_EmptyMessage):
    COMMAND: ClassVar[str] = "getaddr"


@dataclass(frozen=True)
class SendAddrV2(_EmptyMessage):
    """BIP155 (BTC): send ``addrv2`` instead of ``addr``; only before ``verack``."""

    COMMAND: ClassVar[str] = "sendaddrv2"


@dataclass(frozen=True)
class WtxidRelay(_EmptyMessage):
    """BIP339 (BTC): announce transactions by wtxid; only before ``verack``."""

    COMMAND: ClassVar[str] = "wtxidrelay"


_NonceT = TypeVar("_NonceT", bound="_NonceMessage")


@dataclass(frozen=True)
class _NonceMessage(Message):
    """A payload that is one 64-bit nonce (``ping`` and ``pong`` share it)."""

    nonce: int

    def __post_init__(self) -> None:
        check_uint(self.nonce, 64, "nonce")

    def encode(self) -> bytes:
        return put_u64(self.nonce)

    @classmethod
    def decode(cls: type[_NonceT], payload: bytes) -> _NonceT:
        reader = PayloadReader(cls.COMMAND, payload)
        nonce = reader.u64("nonce")
        reader.end()
        return cls(nonce)


@dataclass(frozen=True)
class Ping(_NonceMessage):
    """BIP31 ``ping``: the nonce is mandatory (every peer since protocol 60000 sends it)."""

    COMMAND: ClassVar[str] = "ping"


@dataclass(frozen=True)
class Pong(_NonceMessage):
    """BIP31 ``pong``: echoes the nonce of the ``ping`` it answers."""

    COMMAND: ClassVar[str] = "pong"


@dataclass(frozen=True)
class FeeFilter(Message):
    """BIP133: do not announce transactions paying less than ``feerate`` satoshis per 1,000 bytes."""

    COMMAND: ClassVar[str] = "feefilter"
    feerate: int

    def __post_init__(self) -> None:
        check_int(self.feerate, 64, "feerate")

    def encode(self) -> bytes:
        return put_i64(self.feerate)

    @classmethod
    def decode(cls, payload: bytes) -> FeeFilter:
        reader = PayloadReader(cls.COMMAND, payload)
        feerate = reader.i64("feerate")
        reader.end()
        return cls(feerate)


@dataclass(frozen=True)
class SendCmpct(Message):
    """BIP152: whether the peer wants new blocks as ``cmpctblock`` and which version."""

    COMMAND: ClassVar[str] = "sendcmpct"
    announce: bool
    version: int

    def __post_init__(self) -> None:
        check_uint(self.version, 64, "version")

    def encode(self) -> bytes:
        return (b"\x01" if self.announce else b"\x00") + put_u64(self.version)

    @classmethod
    def decode(cls, payload: bytes) -> SendCmpct:
        reader = PayloadReader(cls.COMMAND, payload)
        announce = reader.boolean("announce flag")
        version = reader.u64("version")
        reader.end()
        return cls(announce, version)
