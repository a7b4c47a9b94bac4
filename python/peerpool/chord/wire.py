"""The ring protocol's wire format: a small versioned binary encoding of our own.

Every message is ``version (u8) | kind (u8) | body``; integers are big-endian,
positions are 64 bytes (a key's fifth hash, SHA-512, is unreduced and needs
all of them), byte strings carry a u32 length and short texts a u8 length.
Decoding is strict: every length and count is checked against its limit and
against the bytes left *before* anything is sliced or allocated, unknown
versions and kinds are refused, and trailing bytes are an error. All failures
are :class:`ChordMessageError`. This file encodes and dispatches on the kind;
the bounded field reader it decodes with is in wire_reader.py.
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
from peerpool.chord.types import MAX_ADDRS, NodeRef
from peerpool.chord.wire_reader import (
    ANSWER_ENTRY,
    ANSWER_MISSING,
    ANSWER_NOT_MINE,
    BYTES,
    DELETED,
    ENTRY_HEAD,
    STR,
    U32,
    U64,
    Reader,
)
from peerpool.errors import ChordMessageError

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
        out += U32.pack(len(msg.items))
        for method, position in msg.items:
            out.append(method)
            _position(out, position)
        _skip(out, msg.skip)
    elif isinstance(msg, Answers):
        if len(msg.items) > MAX_GET_ITEMS:
            raise ChordMessageError(f"{len(msg.items)} answers in one message")
        out += U32.pack(len(msg.items))
        for item in msg.items:
            if item is None:
                out.append(ANSWER_MISSING)
            elif isinstance(item, str):
                out.append(ANSWER_NOT_MINE)
            else:
                out.append(ANSWER_ENTRY)
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
        _blob(out, STR, data.encode("utf-8"))
    else:
        _blob(out, BYTES, data)


def _entry(out: bytearray, entry: Entry) -> None:
    # One struct for the fixed head: entries are most of the bytes of a busy ring.
    key = entry.key
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    out += ENTRY_HEAD.pack(
        entry.method,
        entry.position.to_bytes(POSITION_BYTES, "big"),
        STR if isinstance(key, str) else BYTES,
        len(raw_key),
    )
    out += raw_key
    value = entry.value
    if value is None:
        out.append(DELETED)
    else:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        out.append(STR if isinstance(value, str) else BYTES)
        out += U32.pack(len(raw))
        out += raw
    out += U64.pack(entry.version)


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
    r = Reader(bytes(data))
    version = r.u8()
    if version != VERSION:
        raise ChordMessageError(f"unknown message version {version}", 0)
    kind = r.u8()
    msg = _decode_body(r, kind)
    if r.pos != len(r.data):
        raise ChordMessageError(f"{len(r.data) - r.pos} bytes after the message", r.pos)
    return msg


def _decode_body(r: Reader, kind: int) -> Message:
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
