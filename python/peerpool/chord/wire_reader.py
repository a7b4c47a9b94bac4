"""Reading the ring protocol's messages: the bounded field reader and the
fast loop over a page of entries (wire.py encodes, and decodes with these).

Every length and count is checked against its limit and against the bytes
left *before* anything is sliced or allocated; all failures are
:class:`ChordMessageError`. The tags and fixed layouts both directions share
live here too.
"""

from __future__ import annotations

import struct

from peerpool.chord.messages import (
    MAX_ENTRIES,
    MAX_GET_ITEMS,
    MAX_NODES,
    MAX_SKIP,
    MAX_VALUE_BYTES,
    NOT_MINE,
    POSITION_BYTES,
)
from peerpool.chord.storage import Entry, Value
from peerpool.chord.types import MAX_ADDRS, MAX_ID_CHOICES, MAX_KEY_BYTES, METHODS, NodeRef
from peerpool.errors import ChordMessageError

# Value and key tags: the type comes back as it went in (str stays str).
BYTES, STR, DELETED = 0, 1, 2
# An Answers item's status byte.
ANSWER_MISSING, ANSWER_ENTRY, ANSWER_NOT_MINE = 0, 1, 2

#: An entry's fixed head: method, position, key tag, key length (then the key,
#: the value's tag, length and bytes, and the version).
ENTRY_HEAD = struct.Struct(">B64sBI")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ChordMessageError(
                f"truncated: {n} bytes wanted, {len(self.data) - self.pos} left", self.pos
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise ChordMessageError("truncated: 1 byte wanted, 0 left", self.pos)
        self.pos += 1
        return self.data[self.pos - 1]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise ChordMessageError(f"flag byte {value} is not 0 or 1", self.pos - 1)
        return value == 1

    def method(self) -> int:
        value = self.u8()
        if value >= len(METHODS):
            raise ChordMessageError(f"hash method {value} is not 0..4", self.pos - 1)
        return value

    def position(self) -> int:
        return int.from_bytes(self.take(POSITION_BYTES), "big")

    def count(self, limit: int, min_item_bytes: int) -> int:
        at = self.pos
        count = self.u32()
        # Checked before the loop that would build `count` items: a claimed
        # count that the remaining bytes cannot hold is refused up front.
        if count > limit or count * min_item_bytes > len(self.data) - self.pos:
            raise ChordMessageError(f"count {count} is over its limit or the bytes left", at)
        return count

    def short(self) -> str:
        n = self.u8()
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ChordMessageError("text is not UTF-8", self.pos - n) from None

    def node(self) -> NodeRef:
        peer_id = self.short()
        if not peer_id:
            raise ChordMessageError("empty peer id", self.pos)
        choice = self.u8()
        if choice >= MAX_ID_CHOICES:
            raise ChordMessageError(
                f"id choice {choice} is over {MAX_ID_CHOICES - 1}", self.pos - 1
            )
        n = self.u8()
        if n > MAX_ADDRS:
            raise ChordMessageError(f"{n} addresses for one node, over {MAX_ADDRS}", self.pos - 1)
        return NodeRef(peer_id, tuple(self.short() for _ in range(n)), choice=choice)

    def skip(self) -> tuple[str, ...]:
        n = self.u8()
        if n > MAX_SKIP:
            raise ChordMessageError(f"{n} peers to skip, over {MAX_SKIP}", self.pos - 1)
        return tuple(self.short() for _ in range(n))

    def opt_node(self) -> NodeRef | None:
        return self.node() if self.flag() else None

    def nodes(self) -> tuple[NodeRef, ...]:
        n = self.u8()
        if n > MAX_NODES:
            raise ChordMessageError(f"{n} nodes in one reply, over {MAX_NODES}", self.pos - 1)
        return tuple(self.node() for _ in range(n))

    def blob(self, tag: int, limit: int) -> Value:
        at = self.pos
        n = self.u32()
        if n > limit:
            raise ChordMessageError(f"{n} bytes, over the limit of {limit}", at)
        raw = self.take(n)
        if tag == BYTES:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ChordMessageError("str value is not UTF-8", at) from None

    def tag(self, allowed: tuple[int, ...]) -> int:
        tag = self.u8()
        if tag not in allowed:
            raise ChordMessageError(f"unknown type tag {tag}", self.pos - 1)
        return tag

    def entry(self) -> Entry:
        """One entry: a fast path for well-formed ones; anything it does not
        like is re-read from the same place by the careful path, which raises."""
        data, start, end = self.data, self.pos, len(self.data)
        if start + ENTRY_HEAD.size > end:
            return self._entry_checked()
        method, raw_position, key_tag, key_len = ENTRY_HEAD.unpack_from(data, start)
        if method >= len(METHODS) or key_tag > STR or key_len > MAX_KEY_BYTES:
            return self._entry_checked()
        at = start + ENTRY_HEAD.size + key_len
        if at + 1 > end:
            return self._entry_checked()
        raw_key = data[at - key_len : at]
        value_tag = data[at]
        at += 1
        value: Value | None = None
        if value_tag <= STR:
            if at + 4 > end:
                return self._entry_checked()
            (size,) = U32.unpack_from(data, at)
            at += 4
            if size > MAX_VALUE_BYTES or at + size > end:
                return self._entry_checked()
            value = data[at : at + size]
            at += size
        elif value_tag != DELETED:
            return self._entry_checked()
        if at + 8 > end:
            return self._entry_checked()
        (version,) = U64.unpack_from(data, at)
        try:
            key: Value = raw_key.decode("utf-8") if key_tag == STR else raw_key
            if value_tag == STR:
                assert isinstance(value, bytes)
                value = value.decode("utf-8")
        except UnicodeDecodeError:
            return self._entry_checked()
        self.pos = at + 8
        return Entry(method, int.from_bytes(raw_position, "big"), key, value, version)

    def _entry_checked(self) -> Entry:
        method, position = self.method(), self.position()
        key = self.blob(self.tag((BYTES, STR)), MAX_KEY_BYTES)
        tag = self.tag((BYTES, STR, DELETED))
        value = None if tag == DELETED else self.blob(tag, MAX_VALUE_BYTES)
        return Entry(method, position, key, value, self.u64())

    def answers(self) -> tuple[Entry | str | None, ...]:
        count = self.count(MAX_GET_ITEMS, 1)
        out: list[Entry | str | None] = []
        for _ in range(count):
            status = self.u8()
            if status == ANSWER_MISSING:
                out.append(None)
            elif status == ANSWER_NOT_MINE:
                out.append(NOT_MINE)
            elif status == ANSWER_ENTRY:
                out.append(self.entry())
            else:
                raise ChordMessageError(f"unknown answer status {status}", self.pos - 1)
        return tuple(out)

    def entries(self) -> tuple[Entry, ...]:
        # 1 method + 64 position + 5 key header + 1 value tag + 8 version
        count = self.count(MAX_ENTRIES, 79)
        fast = _fast_entries(self.data, self.pos, count)
        if fast is not None:
            entries, self.pos = fast
            return entries
        return tuple(self.entry() for _ in range(count))


_new_tuple = tuple.__new__
_HEAD_SIZE = ENTRY_HEAD.size
U32_AT = U32.unpack_from
U64_AT = U64.unpack_from
_HEAD_AT = ENTRY_HEAD.unpack_from
_METHOD_COUNT = len(METHODS)


def _fast_entries(data: bytes, pos: int, count: int) -> tuple[tuple[Entry, ...], int] | None:
    """``count`` well-formed entries from ``pos`` in one loop, or None at the
    first thing out of the ordinary (the caller then re-reads them carefully,
    which raises the precise error). Entries are most of a busy ring's bytes:
    this is the loop a node spends its time in while taking writes."""
    end = len(data)
    out: list[Entry] = []
    append = out.append
    value: Value | None
    key: Value
    from_bytes = int.from_bytes
    try:
        for _ in range(count):
            method, raw_position, key_tag, key_len = _HEAD_AT(data, pos)
            at = pos + _HEAD_SIZE + key_len
            if method >= _METHOD_COUNT or key_len > MAX_KEY_BYTES or at >= end:
                return None
            raw_key = data[at - key_len : at]
            value_tag = data[at]
            if value_tag == DELETED:
                value = None
                at += 1
            elif value_tag <= STR:
                (size,) = U32_AT(data, at + 1)
                at += 5
                if size > MAX_VALUE_BYTES or at + size + 8 > end:
                    return None
                raw_value = data[at : at + size]
                at += size
                value = raw_value.decode("utf-8") if value_tag == STR else raw_value
            else:
                return None
            (version,) = U64_AT(data, at)
            if key_tag == STR:
                key = raw_key.decode("utf-8")
            elif key_tag == BYTES:
                key = raw_key
            else:
                return None
            pos = at + 8
            append(
                _new_tuple(Entry, (method, from_bytes(raw_position, "big"), key, value, version))
            )
    except (struct.error, UnicodeDecodeError):
        return None
    return tuple(out), pos
