"""Reading and writing the field types that Bitcoin message payloads are made of.

``PayloadReader`` is a cursor over one payload that checks every read against
the bytes that remain and every count against its protocol maximum *before*
anything is allocated, and turns every failure (including the CompactSize
kernel's) into :class:`MalformedMessageError` naming the command and offset.
The ``put_*`` functions are its inverse for encoding.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Final

from peerpool._core import read_compact_size
from peerpool.encoding import compact_size
from peerpool.errors import CompactSizeError, InputError, MalformedMessageError

# Largest value a CompactSize can hold; the limit passed when any value is legal.
COMPACT_SIZE_MAX: Final = 0xFFFF_FFFF_FFFF_FFFF

HASH_SIZE: Final = 32

_U16_BE: Final = struct.Struct(">H")
_U32: Final = struct.Struct("<I")
_I32: Final = struct.Struct("<i")
_U64: Final = struct.Struct("<Q")
_I64: Final = struct.Struct("<q")


class Message:
    """Base of the payload codecs: frozen dataclasses with ``encode`` and ``decode``.

    ``decode`` is strict: it accepts exactly the encoding the protocol defines
    (minimal CompactSizes, no trailing bytes unless the message allows
    extensions) and raises :class:`MalformedMessageError` for anything else.
    Constructors validate their fields and raise :class:`InputError`, so a
    message that exists can always be encoded.
    """

    __slots__ = ()
    COMMAND: ClassVar[str]

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, payload: bytes) -> Message:
        raise NotImplementedError


class PayloadReader:
    """A bounds-checked cursor over the payload of one ``command`` message."""

    __slots__ = ("_command", "_data", "_offset")

    def __init__(self, command: str, data: bytes) -> None:
        # the CompactSize kernel takes bytes only; a memoryview or bytearray is copied once here
        self._data = bytes(data)
        self._command = command
        self._offset = 0

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def error(self, reason: str, offset: int | None = None) -> MalformedMessageError:
        at = self._offset if offset is None else offset
        return MalformedMessageError(f"{self._command}: {reason} (at offset {at})", offset=at)

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining:
            raise self.error(f"truncated {what}: needs {size} bytes, {self.remaining} remain")
        start = self._offset
        self._offset += size
        return self._data[start : self._offset]

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def boolean(self, what: str) -> bool:
        value = self.u8(what)
        if value > 1:
            raise self.error(f"{what} must be 0 or 1, not {value}", self._offset - 1)
        return value == 1

    def u16_be(self, what: str) -> int:
        return int(_U16_BE.unpack(self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def i32(self, what: str) -> int:
        return int(_I32.unpack(self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])

    def i64(self, what: str) -> int:
        return int(_I64.unpack(self.take(8, what))[0])

    def hash(self, what: str) -> bytes:
        return self.take(HASH_SIZE, what)

    def compact_size(self, limit: int, what: str) -> int:
        """A CompactSize that must be minimally encoded and at most ``limit``."""
        try:
            value, length = read_compact_size(self._data, self._offset, limit)
        except CompactSizeError as exc:
            # the kernel's message already says where
            at = self._offset if exc.offset is None else exc.offset
            raise MalformedMessageError(f"{self._command}: bad {what}: {exc}", offset=at) from exc
        self._offset += length
        return int(value)

    def count(self, limit: int, entry_size: int, what: str) -> int:
        """A CompactSize element count, checked against ``limit`` and against the
        bytes left (``entry_size`` is the smallest encoding of one element), so a
        lying count fails here instead of allocating."""
        start = self._offset
        value = self.compact_size(COMPACT_SIZE_MAX, f"{what} count")
        if value > limit:
            raise self.error(f"{value} {what} exceed the maximum of {limit}", start)
        if value * entry_size > self.remaining:
            raise self.error(
                f"{value} {what} need at least {value * entry_size} bytes, {self.remaining} remain",
                start,
            )
        return value

    def var_bytes(self, limit: int, what: str) -> bytes:
        start = self._offset
        size = self.compact_size(COMPACT_SIZE_MAX, f"{what} length")
        if size > limit:
            raise self.error(f"{what} of {size} bytes exceeds the maximum of {limit}", start)
        return self.take(size, what)

    def var_str(self, limit: int, what: str) -> str:
        # surrogateescape keeps any byte string, valid UTF-8 or not, so that
        # decode followed by encode gives back the exact bytes
        return self.var_bytes(limit, what).decode("utf-8", "surrogateescape")

    def rest(self) -> bytes:
        return self.take(self.remaining, "remainder")

    def end(self) -> None:
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected bytes after the last field")


def put_u16_be(value: int) -> bytes:
    return _U16_BE.pack(value)


def put_u32(value: int) -> bytes:
    return _U32.pack(value)


def put_i32(value: int) -> bytes:
    return _I32.pack(value)


def put_u64(value: int) -> bytes:
    return _U64.pack(value)


def put_i64(value: int) -> bytes:
    return _I64.pack(value)


# the codecs' name for it; the encoder itself is peerpool.encoding's (one copy)
put_compact_size = compact_size


def put_var_bytes(value: bytes) -> bytes:
    return put_compact_size(len(value)) + value


def put_var_str(value: str) -> bytes:
    return put_var_bytes(value.encode("utf-8", "surrogateescape"))


# Field checks for constructors: a message with a field that cannot be encoded
# is refused when it is made, not when it is about to be sent.


def check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise InputError(f"{what} must be {HASH_SIZE} bytes")


def check_uint(value: int, bits: int, what: str) -> None:
    if not 0 <= value < 1 << bits:
        raise InputError(f"{what} must fit in an unsigned {bits}-bit integer, not {value}")


def check_int(value: int, bits: int, what: str) -> None:
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise InputError(f"{what} must fit in a signed {bits}-bit integer, not {value}")


def check_max_len(value: bytes | str, limit: int, what: str) -> None:
    size = len(value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value)
    if size > limit:
        raise InputError(f"{what} of {size} bytes exceeds the maximum of {limit}")
