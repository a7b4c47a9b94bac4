"""The JoinMarket onion message channel's framing: one JSON object per line.

Every message is ``{"type": int, "line": str}`` encoded as JSON and ended by
``\\r\\n``; receivers split on ``\\n`` and ignore a trailing ``\\r`` (the reference
uses Twisted's ``LineReceiver`` on one side and plain ``\\n`` splitting on the
other). The line length is checked before anything is parsed, so a peer cannot
make us buffer or decode more than ``max_line`` bytes.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, NamedTuple

from peerpool.errors import LineTooLongError, MalformedLineError

# Twisted's LineReceiver, which the reference implementation (jmdaemon/onionmc.py)
# uses, drops the connection past 16,384 bytes; joinmarket-ng accepts up to 2 MB.
# We default to 64 KiB: every line a reference node can receive, with room for
# large !tx / !sig messages, yet bounded per connection.
MAX_LINE_BYTES = 64 * 1024


class MessageType(IntEnum):
    """Message types on the wire (jmdaemon/onionmc.py, joinmarket-ng jmcore/protocol.py)."""

    PRIVMSG = 685
    PUBMSG = 687
    PEERLIST = 789
    GETPEERLIST = 791
    HANDSHAKE = 793
    DN_HANDSHAKE = 795
    # 797 is the reference's local-only "connect-in" control type and its old ping;
    # JMP-0004 moved ping to 798 to end the collision. We never send 797.
    PING = 798
    PONG = 799
    DISCONNECT = 801
    NICK_AUTH_CHALLENGE = 803
    NICK_AUTH_PROOF = 805
    NICK_AUTH_RESULT = 807


KNOWN_TYPES = frozenset(int(t) for t in MessageType)


class Frame(NamedTuple):
    """One decoded envelope. ``type`` may be a value we do not know."""

    type: int
    line: str


def encode_frame(msg_type: int, line: str) -> bytes:
    """The bytes of one message, ``\\r\\n`` included (ASCII: json escapes the rest)."""
    return json.dumps({"type": int(msg_type), "line": line}).encode("ascii") + b"\r\n"


def decode_frame(raw: bytes | bytearray) -> Frame:
    """Parse one line (without its newline) into a :class:`Frame`.

    Raises :class:`MalformedLineError` for anything but a JSON object holding an
    integer ``type`` and a string ``line``.
    """
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # RecursionError: '[' x 50,000 fits in a line and nests past the C scanner's limit
        raise MalformedLineError(f"line is not JSON: {type(exc).__name__}") from None
    if type(obj) is not dict:
        raise MalformedLineError(f"line is JSON {type(obj).__name__}, not an object")
    msg_type = obj.get("type")
    line = obj.get("line")
    # bool is an int subclass: {"type": true} must not pass as type 1
    if type(msg_type) is not int:
        raise MalformedLineError("envelope has no integer 'type'")
    if type(line) is not str:
        raise MalformedLineError("envelope has no string 'line'")
    return Frame(msg_type, line)


def _reject_constant(name: str) -> Any:
    raise MalformedLineError(f"JSON constant {name} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedLineError("JSON object with a duplicate key")
    return obj


def strict_json_object(text: str, what: str, keys: frozenset[str] | None = None) -> dict[str, Any]:
    """Parse ``text`` as one JSON object, strictly: duplicate keys, NaN and
    Infinity, deep nesting and (with ``keys``) any other set of keys than
    exactly ``keys`` are :class:`MalformedLineError`. joinmarket-ng's payload
    models parse nick-auth messages this way, so ours must be as strict in what
    we accept and exact in what we send."""
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except MalformedLineError as exc:
        raise MalformedLineError(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise MalformedLineError(f"{what} is not JSON ({type(exc).__name__})") from None
    if type(obj) is not dict:
        raise MalformedLineError(f"{what} is not a JSON object")
    if keys is not None and obj.keys() != keys:
        raise MalformedLineError(f"{what} has fields {sorted(obj)[:8]}, expected {sorted(keys)}")
    return obj


def is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (JSON's ``\\ud800`` decodes to
    one): such text cannot be encoded, hashed or signed as UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LineBuffer:
    """Incremental line splitter with a length limit enforced before parsing."""

    __slots__ = ("_pending", "max_line")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete lines (newline and ``\\r`` removed, empty
        lines skipped). Raises :class:`LineTooLongError` when a line, complete or
        not, exceeds ``max_line``; the buffer is then unusable (drop the peer)."""
        if self._pending:
            data = self._pending + data
        if b"\n" not in data:
            if len(data) > self.max_line:
                raise LineTooLongError(
                    f"line exceeds {self.max_line} bytes without a newline", offset=0
                )
            self._pending = data
            return []
        lines = data.split(b"\n")
        rest = lines.pop()
        if len(rest) > self.max_line:
            raise LineTooLongError(f"line exceeds {self.max_line} bytes without a newline")
        self._pending = rest
        out = []
        limit = self.max_line
        for line in lines:
            if len(line) > limit + 1:  # +1: the optional '\r'
                raise LineTooLongError(f"line of {len(line)} bytes exceeds {limit}")
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                out.append(line)
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete line."""
        return len(self._pending)
