"""Peerlists (type 789): ``nick;location[;D][;F:f1+f2]`` entries, comma-separated.

A directory sends its list in several chunks so that no line grows past the
line limit. ``;D`` marks a nick that left; ``;F:`` lists the peer's features
with ``+`` between them (joinmarket-ng's extension; the reference ignores it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from peerpool.errors import MalformedLineError
from peerpool.joinmarket.identity import is_valid_nick
from peerpool.joinmarket.messages import MAX_FEATURES, NOT_SERVING_ONION

_FORBIDDEN = frozenset(",;!+ \t\r\n")
MAX_LOCATION = 300  # a 62-character onion plus port, or a host name, with room
DEFAULT_CHUNK_CHARS = 8000  # well under the 16 KiB the reference accepts per line


def _clean(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and not (_FORBIDDEN & set(value)) and value.isprintable()


@dataclass(frozen=True, slots=True)
class PeerEntry:
    nick: str
    location: str = NOT_SERVING_ONION
    disconnected: bool = False
    features: frozenset[str] = field(default_factory=frozenset)

    def encode(self, with_features: bool = True) -> str:
        parts = [self.nick, self.location]
        if self.disconnected:
            parts.append("D")
        if with_features and self.features:
            parts.append("F:" + "+".join(sorted(self.features)))
        return ";".join(parts)

    @property
    def reachable(self) -> bool:
        """Whether the peer serves an onion we could dial directly."""
        return self.location != NOT_SERVING_ONION


def parse_entry(text: str) -> PeerEntry:
    parts = text.split(";")
    if len(parts) < 2 or len(parts) > 4:
        raise MalformedLineError(f"peerlist entry {text[:80]!r} is not nick;location[;D][;F:..]")
    nick, location = parts[0], parts[1]
    if not is_valid_nick(nick):
        raise MalformedLineError(f"peerlist entry has a bad nick {nick[:32]!r}")
    if not _clean(location, MAX_LOCATION):
        raise MalformedLineError(f"peerlist entry for {nick} has a bad location")
    disconnected = False
    features: frozenset[str] = frozenset()
    for extra in parts[2:]:
        if extra == "D" and not disconnected:
            disconnected = True
        elif extra.startswith("F:") and not features:
            names = [f for f in extra[2:].split("+") if f]
            if len(names) > MAX_FEATURES or not all(_clean(f, 64) for f in names):
                raise MalformedLineError(f"peerlist entry for {nick} has bad features")
            features = frozenset(names)
        else:
            raise MalformedLineError(f"peerlist entry for {nick} has unknown field {extra[:16]!r}")
    return PeerEntry(nick, location, disconnected, features)


def parse_peerlist(line: str) -> list[PeerEntry]:
    """All entries of one peerlist line (an empty line is an empty list)."""
    if not line:
        return []
    return [parse_entry(text) for text in line.split(",")]


def encode_peerlist(
    entries: Iterable[PeerEntry],
    with_features: bool = True,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> list[str]:
    """Lines of at most ``chunk_chars`` characters (one entry never splits)."""
    lines: list[str] = []
    current: list[str] = []
    size = 0
    for entry in entries:
        text = entry.encode(with_features)
        if current and size + 1 + len(text) > chunk_chars:
            lines.append(",".join(current))
            current, size = [], 0
        size += len(text) + (1 if current else 0)
        current.append(text)
    if current:
        lines.append(",".join(current))
    return lines
