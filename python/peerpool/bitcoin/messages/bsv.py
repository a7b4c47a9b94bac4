"""Messages that only Bitcoin SV peers send: protoconf, reject, authch.

(Bitcoin Core removed ``reject`` in 0.20; BSV still sends it, for example
for a transaction it does not accept into its mempool.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final

from peerpool.bitcoin.messages.wire import (
    COMPACT_SIZE_MAX,
    HASH_SIZE,
    Message,
    PayloadReader,
    check_max_len,
    check_uint,
    put_compact_size,
    put_u32,
    put_var_str,
)
from peerpool.errors import InputError

# From the protoconf specification (github.com/bitcoin-sv-specs/protocol,
# p2p/protoconf.md): the payload is at most 1,048,576 bytes, and advertising a
# maximum receive payload below 1,048,576 bytes is a protocol violation.
MAX_PROTOCONF_PAYLOAD: Final = 1_048_576
MIN_MAX_RECV_PAYLOAD_LENGTH: Final = 1_048_576

# CProtoconf in Bitcoin SV (src/protocol.h): the stream policy list is read with
# LIMITED_STRING((MAX_STREAM_POLICY_NAME_LENGTH + 1) * MAX_NUM_STREAM_POLICIES),
# that is (64 + 1) * 10 bytes.
MAX_STREAM_POLICIES_LENGTH: Final = 650

# BIP61, as Bitcoin SV reads it (ProcessRejectMessage): the rejected command is
# a LIMITED_STRING of COMMAND_SIZE (12), the reason of MAX_REJECT_MESSAGE_LENGTH (111).
MAX_REJECT_COMMAND_LENGTH: Final = 12
MAX_REJECT_REASON_LENGTH: Final = 111


@dataclass(frozen=True)
class Protoconf(Message):
    """``protoconf``: the largest payload (block messages aside) the sender accepts.

    ``number_of_fields`` versions the message: 1 is the payload length alone, 2
    adds the stream policies (BSV 1.0.x sends 2 with "BlockPriority,Default").
    A peer may send more fields than we know; they are kept in ``extra``
    untouched, as the specification asks.
    """

    COMMAND: ClassVar[str] = "protoconf"
    max_recv_payload_length: int
    stream_policies: str | None = "Default"
    number_of_fields: int = 2
    extra: bytes = b""

    def __post_init__(self) -> None:
        check_uint(self.max_recv_payload_length, 32, "maximum receive payload length")
        if self.number_of_fields < 1:
            raise InputError("protoconf has at least one field")
        if (self.stream_policies is None) != (self.number_of_fields == 1):
            raise InputError("stream policies are present exactly when number_of_fields >= 2")
        if self.stream_policies is not None:
            check_max_len(self.stream_policies, MAX_STREAM_POLICIES_LENGTH, "stream policies")
        if self.extra and self.number_of_fields <= 2:
            raise InputError("extra bytes need number_of_fields above 2")

    def encode(self) -> bytes:
        parts = [put_compact_size(self.number_of_fields), put_u32(self.max_recv_payload_length)]
        if self.stream_policies is not None:
            parts.append(put_var_str(self.stream_policies))
        parts.append(self.extra)
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Protoconf:
        reader = PayloadReader(cls.COMMAND, payload)
        if len(payload) > MAX_PROTOCONF_PAYLOAD:
            raise reader.error(f"payload of {len(payload)} bytes exceeds {MAX_PROTOCONF_PAYLOAD}")
        fields = reader.compact_size(COMPACT_SIZE_MAX, "number of fields")
        if fields == 0:
            raise reader.error("number of fields must not be 0", 0)
        start = reader.offset
        max_recv = reader.u32("maximum receive payload length")
        if max_recv < MIN_MAX_RECV_PAYLOAD_LENGTH:
            raise reader.error(
                f"maximum receive payload length {max_recv} is below {MIN_MAX_RECV_PAYLOAD_LENGTH}",
                start,
            )
        policies = None
        if fields >= 2:
            policies = reader.var_str(MAX_STREAM_POLICIES_LENGTH, "stream policies")
        extra = reader.rest() if fields > 2 else b""
        reader.end()
        return cls(max_recv, policies, fields, extra)


class RejectCode(IntEnum):
    """BIP61 codes, plus Bitcoin SV's (src/consensus/validation.h, src/net/net.h)."""

    MALFORMED = 0x01
    INVALID = 0x10
    OBSOLETE = 0x11
    DUPLICATE = 0x12
    NONSTANDARD = 0x40
    DUST = 0x41
    INSUFFICIENTFEE = 0x42
    CHECKPOINT = 0x43
    STREAM_SETUP = 0x60  # BSV: a multistream association could not be set up


@dataclass(frozen=True)
class Reject(Message):
    """BIP61 ``reject``. ``data`` is the 32-byte hash of the rejected transaction
    or block when there is one, else empty; ``code`` stays an int (see RejectCode)."""

    COMMAND: ClassVar[str] = "reject"
    message: str
    code: int
    reason: str
    data: bytes = b""

    def __post_init__(self) -> None:
        check_max_len(self.message, MAX_REJECT_COMMAND_LENGTH, "rejected command")
        check_uint(self.code, 8, "reject code")
        check_max_len(self.reason, MAX_REJECT_REASON_LENGTH, "reject reason")
        if len(self.data) not in (0, HASH_SIZE):
            raise InputError(f"reject data is empty or a {HASH_SIZE}-byte hash")

    @property
    def hash_hex(self) -> str | None:
        """The rejected object's hash as displayed (byte-reversed), if any."""
        return self.data[::-1].hex() if self.data else None

    def __repr__(self) -> str:
        try:
            code = RejectCode(self.code).name
        except ValueError:
            code = f"{self.code:#04x}"
        about = f", {self.hash_hex}" if self.data else ""
        return f"Reject({self.message!r}, {code}, {self.reason!r}{about})"

    def encode(self) -> bytes:
        return b"".join(
            (put_var_str(self.message), bytes([self.code]), put_var_str(self.reason), self.data)
        )

    @classmethod
    def decode(cls, payload: bytes) -> Reject:
        reader = PayloadReader(cls.COMMAND, payload)
        message = reader.var_str(MAX_REJECT_COMMAND_LENGTH, "rejected command")
        code = reader.u8("reject code")
        reason = reader.var_str(MAX_REJECT_REASON_LENGTH, "reject reason")
        data = b""
        if reader.remaining:
            data = reader.hash("rejected hash")
        reader.end()
        return cls(message, code, reason, data)


@dataclass(frozen=True)
class AuthCh(Message):
    """``authch``: BSV's miner-id authentication challenge, sent after ``verack``.

    peerpool does not authenticate, so the payload is kept opaque (BSV 1.0.13
    sends a version, a length and a 32-byte random challenge, 40 bytes).
    """

    COMMAND: ClassVar[str] = "authch"
    payload: bytes

    def encode(self) -> bytes:
        return self.payload

    @classmethod
    def decode(cls, payload: bytes) -> AuthCh:
        return cls(bytes(payload))
