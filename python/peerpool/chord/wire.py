"""The ring protocol's wire format: a small versioned binary encoding of our own.

Every message is ``version (u8) | kind (u8) | body``; integers are big-endian,
positions are 64 bytes (a key's fifth hash, SHA-512, is unreduced and needs
all of them), byte strings carry a u32 length and short texts a u8 length.
Decoding is strict: every length and count is checked against its limit and
against the bytes left *before* anything is sliced or allocated, unknown
versions and kinds are refused, and trailing bytes are an error. All failures
are :class:`ChordMessageError`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from peerpool.chord.messages import (
    KINDS,
    MAX_ENTRIES,
    MAX_GET_ITEMS,
    MAX_MESSAGE_BYTES,
    MAX_NODES,
    MAX_SKIP,
    MAX_SYNC,
    MAX_VALUE_BYTES,
    NOT_MINE,
    POSITION_BYTES,
    VERSION,
    Answers,
    Broadcast,
    Entries,
    Error,
    Find,
    Forget,
    Found,
    Get,
    GetMany,
    GetState,
    Leaving,
    Message,
    Missing,
    Next,
    Notify,
    Ok,
    Ping,
    Put,
    State,
    Sync,
    Transfer,
    Want,
)
from peerpool.chord.storage import Entry, Value
from peerpool.chord.types import MAX_ADDRS, MAX_ID_CHOICES, MAX_KEY_BYTES, METHODS, NodeRef
from peerpool.errors import ChordMessageError

# Value and key tags: the type comes back as it went in (str stays str).
_BYTES, _STR, _DELETED = 0, 1, 2
# An Answers item's status byte.
_ANSWER_MISSING, _ANSWER_ENTRY, _ANSWER_NOT_MINE = 0, 1, 2


# --- encoding -------------------------------------------------------------------


def encode(msg: Message) -> bytes:
    out = bytearray((VERSION, KINDS[type(msg)]))
    if isinstance(msg, Get):
        out.append(msg.method)
        _position(out, msg.position)
        _skip(out, msg.skip)
    elif isinstance(msg, Find):
        _position(out, msg.point)
        _skip(out, msg.skip)
    elif isinstance(msg, GetMany):
        if len(msg.items) > MAX_GET_ITEMS:
            raise ChordMessageError(f"{len(msg.items)} positions in one GetMany")
        out += _U32.pack(len(msg.items))
        for method, position in msg.items:
            out.append(method)
            _position(out, position)
        _skip(out, msg.skip)
    elif isinstance(msg, Answers):
        if len(msg.items) > MAX_GET_ITEMS:
            raise ChordMessageError(f"{len(msg.items)} answers in one message")
        out += _U32.pack(len(msg.items))
        for item in msg.items:
            if item is None:
                out.append(_ANSWER_MISSING)
            elif isinstance(item, str):
                out.append(_ANSWER_NOT_MINE)
            else:
                out.append(_ANSWER_ENTRY)
                _entry(out, item)
    elif isinstance(msg, Put):
        out.append(1 if msg.replica else 0)
        _entries(out, msg.entries)
        _skip(out, msg.skip)
    elif isinstance(msg, Notify):
        _node(out, msg.node)
    elif isinstance(msg, Transfer):
        _position(out, msg.start)
        _position(out, msg.end)
        if msg.cursor is None:
            out.append(0)
        else:
            out.append(1)
            out.append(msg.cursor[0])
            _position(out, msg.cursor[1])
        out += struct.pack(">I", msg.limit)
    elif isinstance(msg, (Sync, Forget)):
        if len(msg.items) > MAX_SYNC:
            raise ChordMessageError(f"{len(msg.items)} items in one message, over {MAX_SYNC}")
        out += struct.pack(">I", len(msg.items))
        for method, position, version in msg.items:
            out.append(method)
            _position(out, position)
            out += struct.pack(">Q", version)
    elif isinstance(msg, Leaving):
        _node(out, msg.node)
        _opt_node(out, msg.predecessor)
        _nodes(out, msg.successors)
    elif isinstance(msg, Broadcast):
        out += msg.msg_id
        out += struct.pack(">QB", msg.sent_ms, msg.hops)
        _position(out, msg.limit)
        _node(out, msg.departed)
    elif isinstance(msg, Next):
        out.append(1 if msg.owner else 0)
        _nodes(out, msg.nodes)
    elif isinstance(msg, Found):
        _entry(out, msg.entry)
    elif isinstance(msg, State):
        _node(out, msg.node)
        _opt_node(out, msg.predecessor)
        _nodes(out, msg.successors)
    elif isinstance(msg, Entries):
        out.append(1 if msg.more else 0)
        _entries(out, msg.entries)
    elif isinstance(msg, Want):
        out += struct.pack(">I", len(msg.indices))
        for index in msg.indices:
            out += struct.pack(">I", index)
    elif isinstance(msg, Error):
        _short(out, msg.code)
    return bytes(out)


def _position(out: bytearray, value: int) -> None:
    out += value.to_bytes(POSITION_BYTES, "big")


def _short(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ChordMessageError(f"text of {len(raw)} bytes is over 255")
    out.append(len(raw))
    out += raw


def _skip(out: bytearray, peers: Sequence[str]) -> None:
    out.append(min(len(peers), MAX_SKIP))
    for peer in peers[:MAX_SKIP]:
        _short(out, peer)


def _blob(out: bytearray, tag: int, data: bytes) -> None:
    out.append(tag)
    out += struct.pack(">I", len(data))
    out += data


def _node(out: bytearray, node: NodeRef) -> None:
    _short(out, node.peer_id)
    out.append(node.choice)
    addrs = node.addrs[:MAX_ADDRS]
    out.append(len(addrs))
    for addr in addrs:
        _short(out, addr)


def _opt_node(out: bytearray, node: NodeRef | None) -> None:
    out.append(0 if node is None else 1)
    if node is not None:
        _node(out, node)


def _nodes(out: bytearray, nodes: Sequence[NodeRef]) -> None:
    out.append(min(len(nodes), MAX_NODES))
    for node in nodes[:MAX_NODES]:
        _node(out, node)


def _text_or_bytes(out: bytearray, data: Value) -> None:
    if isinstance(data, str):
        _blob(out, _STR, data.encode("utf-8"))
    else:
        _blob(out, _BYTES, data)


#: An entry's fixed head: method, position, key tag, key length (then the key,
#: the value's tag, length and bytes, and the version).
_ENTRY_HEAD = struct.Struct(">B64sBI")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _entry(out: bytearray, entry: Entry) -> None:
    # One struct for the fixed head: entries are most of the bytes of a busy ring.
    key = entry.key
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    out += _ENTRY_HEAD.pack(
        entry.method,
        entry.position.to_bytes(POSITION_BYTES, "big"),
        _STR if isinstance(key, str) else _BYTES,
        len(raw_key),
    )
    out += raw_key
    value = entry.value
    if value is None:
        out.append(_DELETED)
    else:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        out.append(_STR if isinstance(value, str) else _BYTES)
        out += _U32.pack(len(raw))
        out += raw
    out += _U64.pack(entry.version)


def _entries(out: bytearray, entries: Sequence[Entry]) -> None:
    if len(entries) > MAX_ENTRIES:
        raise ChordMessageError(f"{len(entries)} entries in one message, over {MAX_ENTRIES}")
    out += struct.pack(">I", len(entries))
    for entry in entries:
        _entry(out, entry)


# --- decoding ---------------------------------------------------------------------


def decode(data: bytes | bytearray | memoryview) -> Message:
    """One message from ``data`` (all of it), or :class:`ChordMessageError`."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ChordMessageError(f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}")
    r = _Reader(bytes(data))
    version = r.u8()
    if version != VERSION:
        raise ChordMessageError(f"unknown message version {version}", 0)
    kind = r.u8()
    msg = _decode_body(r, kind)
    if r.pos != len(r.data):
        raise ChordMessageError(f"{len(r.data) - r.pos} bytes after the message", r.pos)
    return msg


def _decode_body(r: _Reader, kind: int) -> Message:
    if kind == 1:
        return Ping()
    if kind == 2:
        return Get(r.method(), r.position(), r.skip())
    if kind == 3:
        replica = r.flag()
        return Put(r.entries(), replica, r.skip())
    if kind == 4:
        return GetState()
    if kind == 5:
        return Notify(r.node())
    if kind == 6:
        start, end = r.position(), r.position()
        cursor = (r.method(), r.position()) if r.flag() else None
        return Transfer(start, end, cursor, r.u32())
    if kind == 7:
        count = r.count(MAX_SYNC, 1 + POSITION_BYTES + 8)
        return Sync(tuple((r.method(), r.position(), r.u64()) for _ in range(count)))
    if kind == 8:
        return Leaving(r.node(), r.opt_node(), r.nodes())
    if kind == 9:
        msg_id = r.take(16)
        sent_ms, hops = r.u64(), r.u8()
        return Broadcast(msg_id, sent_ms, hops, r.position(), r.node())
    if kind == 10:
        return Find(r.position(), r.skip())
    if kind == 11:
        count = r.count(MAX_GET_ITEMS, 1 + POSITION_BYTES)
        items = tuple((r.method(), r.position()) for _ in range(count))
        return GetMany(items, r.skip())
    if kind == 12:
        count = r.count(MAX_SYNC, 1 + POSITION_BYTES + 8)
        return Forget(tuple((r.method(), r.position(), r.u64()) for _ in range(count)))
    if kind == 64:
        return Ok()
    if kind == 65:
        owner = r.flag()
        return Next(r.nodes(), owner)
    if kind == 66:
        return Found(r.entry())
    if kind == 67:
        return Missing()
    if kind == 68:
        return State(r.node(), r.opt_node(), r.nodes())
    if kind == 69:
        more = r.flag()
        return Entries(r.entries(), more)
    if kind == 70:
        count = r.count(MAX_SYNC, 4)
        return Want(tuple(r.u32() for _ in range(count)))
    if kind == 71:
        return Error(r.short())
    if kind == 72:
        return Answers(r.answers())
    raise ChordMessageError(f"unknown message kind {kind}", 1)


class _Reader:
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
        if tag == _BYTES:
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
        if start + _ENTRY_HEAD.size > end:
            return self._entry_checked()
        method, raw_position, key_tag, key_len = _ENTRY_HEAD.unpack_from(data, start)
        if method >= len(METHODS) or key_tag > _STR or key_len > MAX_KEY_BYTES:
            return self._entry_checked()
        at = start + _ENTRY_HEAD.size + key_len
        if at + 1 > end:
            return self._entry_checked()
        raw_key = data[at - key_len : at]
        value_tag = data[at]
        at += 1
        value: Value | None = None
        if value_tag <= _STR:
            if at + 4 > end:
                return self._entry_checked()
            (size,) = _U32.unpack_from(data, at)
            at += 4
            if size > MAX_VALUE_BYTES or at + size > end:
                return self._entry_checked()
            value = data[at : at + size]
            at += size
        elif value_tag != _DELETED:
            return self._entry_checked()
        if at + 8 > end:
            return self._entry_checked()
        (version,) = _U64.unpack_from(data, at)
        try:
            key: Value = raw_key.decode("utf-8") if key_tag == _STR else raw_key
            if value_tag == _STR:
                assert isinstance(value, bytes)
                value = value.decode("utf-8")
        except UnicodeDecodeError:
            return self._entry_checked()
        self.pos = at + 8
        return Entry(method, int.from_bytes(raw_position, "big"), key, value, version)

    def _entry_checked(self) -> Entry:
        method, position = self.method(), self.position()
        key = self.blob(self.tag((_BYTES, _STR)), MAX_KEY_BYTES)
        tag = self.tag((_BYTES, _STR, _DELETED))
        value = None if tag == _DELETED else self.blob(tag, MAX_VALUE_BYTES)
        return Entry(method, position, key, value, self.u64())

    def answers(self) -> tuple[Entry | str | None, ...]:
        count = self.count(MAX_GET_ITEMS, 1)
        out: list[Entry | str | None] = []
        for _ in range(count):
            status = self.u8()
            if status == _ANSWER_MISSING:
                out.append(None)
            elif status == _ANSWER_NOT_MINE:
                out.append(NOT_MINE)
            elif status == _ANSWER_ENTRY:
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
_HEAD_SIZE = _ENTRY_HEAD.size
_U32_AT = _U32.unpack_from
_U64_AT = _U64.unpack_from
_HEAD_AT = _ENTRY_HEAD.unpack_from
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
            if value_tag == _DELETED:
                value = None
                at += 1
            elif value_tag <= _STR:
                (size,) = _U32_AT(data, at + 1)
                at += 5
                if size > MAX_VALUE_BYTES or at + size + 8 > end:
                    return None
                raw_value = data[at : at + size]
                at += size
                value = raw_value.decode("utf-8") if value_tag == _STR else raw_value
            else:
                return None
            (version,) = _U64_AT(data, at)
            if key_tag == _STR:
                key = raw_key.decode("utf-8")
            elif key_tag == _BYTES:
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
