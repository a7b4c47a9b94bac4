"""Message framing: 24-byte header with checksum, BSV's extended header, a push decoder."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from tests.reference.bitcoin.common import Rejected, sha256d

EXTMSG = b"extmsg" + bytes(6)
EXT_MARKER = 0xFFFF_FFFF


def checksum(payload: bytes) -> bytes:
    return sha256d(payload)[:4]


def parse_command(raw: bytes) -> str | None:
    """The command in a 12-byte field, or None if it is not printable ASCII then NULs."""
    name = raw.split(b"\0", 1)[0]
    padding = raw[len(name) :]
    if not name or any(not 0x20 <= b <= 0x7E for b in name) or padding.strip(b"\0"):
        return None
    return name.decode("ascii")


def command_field(command: str) -> bytes:
    raw = command.encode("utf-8")
    if len(raw) > 12 or parse_command(raw.ljust(12, b"\0")) is None:
        raise Rejected("bad-command", 0, repr(command))
    return raw.ljust(12, b"\0")


def encode_header(magic: bytes, command: str, length: int, checksum: bytes = bytes(4)) -> bytes:
    if length >= EXT_MARKER:
        return (
            magic
            + EXTMSG
            + struct.pack("<I", EXT_MARKER)
            + bytes(4)
            + command_field(command)
            + struct.pack("<Q", length)
        )
    return magic + command_field(command) + struct.pack("<I", length) + checksum


def encode_message(magic: bytes, command: str, payload: bytes) -> bytes:
    if len(payload) >= EXT_MARKER:
        return encode_header(magic, command, len(payload)) + payload
    return encode_header(magic, command, len(payload), checksum(payload)) + payload


# Events of the reference decoder, as tuples:
# ("message", command, payload), ("start", command, length), ("piece", data),
# ("end", command, length).
Event = tuple


@dataclass
class _Payload:
    command: str
    length: int
    expected: bytes | None  # checksum from the header; None for extended headers
    large: bool
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    received: int = 0
    body: bytearray = field(default_factory=bytearray)


class MessageDecoder:
    """Push decoder: keeps unconsumed header bytes in a buffer, the payload in
    another (or hands it on in pieces when it is large)."""

    def __init__(self, magic: bytes, max_payload: int, large_threshold: int) -> None:
        self.magic = magic
        self.max_payload = max_payload
        self.large_threshold = large_threshold
        self.header = bytearray()
        self.payload: _Payload | None = None
        self.consumed = 0
        self.message_start = 0
        self.failed: Rejected | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self.failed:
            raise self.failed
        events: list[Event] = []
        data = bytes(data)
        try:
            while data:
                used = self._step(data, events)
                self.consumed += used
                data = data[used:]
        except Rejected as exc:
            self.failed = exc
            raise
        return events

    def _step(self, data: bytes, events: list[Event]) -> int:
        if self.payload is not None:
            p = self.payload
            piece = data[: p.length - p.received]
            p.received += len(piece)
            p.hasher.update(piece)
            if p.large:
                events.append(("piece", piece))
            else:
                p.body += piece
            if p.received == p.length:
                self._finish(events)
            return len(piece)
        if not self.header:
            self.message_start = self.consumed
        need = 44 if len(self.header) >= 24 and self.header[4:16] == EXTMSG else 24
        take = data[: need - len(self.header)]
        before = len(self.header)
        self.header += take
        if before < 4 <= len(self.header) and self.header[:4] != self.magic:
            raise Rejected("bad-magic", self.message_start)
        if len(self.header) == 24 and self.header[4:16] == EXTMSG:
            length, sum_field = struct.unpack_from("<I4s", self.header, 16)
            if length != EXT_MARKER or sum_field != bytes(4):
                raise Rejected("bad-extended", self.message_start)
        elif len(self.header) == need:
            self._begin(events)
        return len(take)

    def _begin(self, events: list[Event]) -> None:
        h = bytes(self.header)
        self.header = bytearray()
        if len(h) == 44:
            command = parse_command(h[24:36])
            (length,) = struct.unpack_from("<Q", h, 36)
            expected = None
        else:
            command = parse_command(h[4:16])
            length, expected = struct.unpack_from("<I4s", h, 16)
        if command is None:
            raise Rejected("bad-command", self.message_start)
        if expected is None and length < EXT_MARKER:
            raise Rejected("bad-extended", self.message_start)  # fits the 32-bit length
        if length > self.max_payload:
            raise Rejected("too-large", self.message_start)
        large = length >= self.large_threshold
        if large:
            events.append(("start", command, length))
        self.payload = _Payload(command, length, expected, large)
        if length == 0:
            self._finish(events)

    def _finish(self, events: list[Event]) -> None:
        p = self.payload
        assert p is not None
        self.payload = None
        digest = hashlib.sha256(p.hasher.digest()).digest()
        if p.expected is not None and digest[:4] != p.expected:
            raise Rejected("bad-checksum", self.message_start)
        if p.large:
            events.append(("end", p.command, p.length))
        else:
            events.append(("message", p.command, bytes(p.body)))


def merge_pieces(events: list[Event]) -> list[Event]:
    """Join consecutive pieces: how a payload is split into pieces is not part
    of the decoder's contract, their concatenation is."""
    out: list[Event] = []
    for e in events:
        if e[0] == "piece" and out and out[-1][0] == "piece":
            out[-1] = ("piece", out[-1][1] + e[1])
        else:
            out.append(e)
    return out
