"""Keeping copies right over time: replica repair, tombstone collection, and
the rebuild of a position whose every copy died.

- ``repair``: an owner gives its next ``replicas - 1`` successors what they
  lack of its arc (Sync lists versions, Want answers what is missing). While
  doing so it learns which of its tombstones (deleted keys) every replica
  holds; those older than the core's ``tombstone_ttl`` are then forgotten,
  here and on the replicas (Forget), so deletes do not pile up for ever. A
  tombstone is kept until the replicas agree: collected earlier, a replica
  that missed the delete would bring the value back.
- ``rebuild``: a key lives under five positions. When the owner and all its
  replicas of one position die at once, nobody holds that position any more;
  the owners of the other positions each hold the key, so an owner checks
  the other positions of its keys (Sync to their owners) and, where at least
  a majority (three of five, itself included) hold its version, stores it
  again where it is lacking.
"""

from __future__ import annotations

from peerpool.chord import messages as m
from peerpool.chord.core import Call, ChordCore, pages
from peerpool.chord.ops import Background, Op, Parallel, _call, _forget, find_owners
from peerpool.chord.ring import get_hashes
from peerpool.chord.storage import Entry, Item
from peerpool.chord.types import MAJORITY, METHODS, NodeRef

#: Owner lookups (routed Finds) one rebuild round may make for positions
#: whose owner this node cannot tell from its own tables (big rings).
MAX_REBUILD_LOOKUPS = 64


def repair(core: ChordCore, now_ns: int | None = None) -> Op[int]:
    """Give the replicas what they lack of my arc; with ``now_ns``, collect the
    tombstones older than ``core.tombstone_ttl`` that every replica holds.
    Returns the entries sent."""
    primary = core.primary_entries()
    targets = list(core.replica_targets())
    collectable: set[Item] = set()
    if now_ns is not None:
        cutoff = now_ns - int(core.tombstone_ttl * 1e9)
        collectable = {e.item for e in primary if e.value is None and e.version <= cutoff}
    sent = 0
    for node in targets:
        agreed = True
        for start in range(0, len(primary), m.MAX_SYNC):
            chunk = primary[start : start + m.MAX_SYNC]
            resp = yield from _call(
                node, m.Sync(tuple((e.method, e.position, e.version) for e in chunk))
            )
            if resp is None:
                _forget(core, node)
                agreed = False
                break
            if not isinstance(resp, m.Want):
                agreed = False
                break
            wanted = [chunk[i] for i in resp.indices if 0 <= i < len(chunk)]
            # What it lacked now is only sent: it agrees on a later round.
            collectable.difference_update(e.item for e in wanted)
            for page in pages(wanted):
                yield from _call(node, m.Put(tuple(page), replica=True))
                sent += len(page)
        if not agreed:
            collectable.clear()
    if collectable:
        yield from _collect(core, targets, collectable)
    return sent


def _collect(core: ChordCore, targets: list[NodeRef], items: set[Item]) -> Op[None]:
    gone = []
    for item in items:
        entry = core.store.get(item)
        if entry is not None and entry.value is None:
            gone.append((item[0], item[1], entry.version))
    for start in range(0, len(gone), m.MAX_SYNC):
        note = m.Forget(tuple(gone[start : start + m.MAX_SYNC]))
        if targets:
            yield Parallel([Call(node, note) for node in targets])
    for method, position, version in gone:
        core.store.discard_tombstone((method, position), version)
    core.counters["tombstones_collected"] += len(gone)


def rebuild(core: ChordCore, turn: int | None = None) -> Op[int]:
    """Store again, where their owners lack them, the other positions of the
    keys I own a position of, when a majority of positions hold my version.
    Returns the entries stored.

    ``turn``: only the keys whose position ``turn % 5`` is mine. Each owner of a
    key would otherwise check it every round, five times over; taking turns,
    one owner checks it per round and every live one within five rounds."""
    newest: dict[bytes | str, Entry] = {}
    for entry in core.primary_entries():
        if turn is not None and entry.method != turn % len(METHODS):
            continue
        held = newest.get(entry.key)
        if held is None or entry.newer_than(held):
            newest[entry.key] = entry
    # (key's entry, the other positions' entries) and who owns each of those
    plans: list[tuple[Entry, list[Entry]]] = []
    for entry in newest.values():
        others = [
            Entry(j, pos, entry.key, entry.value, entry.version)
            for j, pos in enumerate(get_hashes(entry.key))
            if j != entry.method
        ]
        plans.append((entry, others))
    points = [o.point for _, others in plans for o in others]
    owners = yield from find_owners(core, points, MAX_REBUILD_LOOKUPS)
    # Ask each owner, in one Sync per page, which of its positions it lacks.
    asks: dict[str, tuple[NodeRef, list[Entry]]] = {}
    lacking: set[tuple[int, int]] = set()
    unknown: set[tuple[int, int]] = set()
    for _, others in plans:
        for other in others:
            owner = owners.get(other.point)
            if owner is None:
                unknown.add(other.item)
            elif owner.peer_id == core.me.peer_id:
                if core.store.version(other.item) < other.version:
                    lacking.add(other.item)
            else:
                asks.setdefault(owner.peer_id, (owner, []))[1].append(other)
    ask_list = [
        (node, batch[start : start + m.MAX_SYNC])
        for node, batch in asks.values()
        for start in range(0, len(batch), m.MAX_SYNC)
    ]
    if ask_list:
        answers = yield Parallel(
            [
                Call(node, m.Sync(tuple((e.method, e.position, e.version) for e in batch)))
                for node, batch in ask_list
            ]
        )
        assert isinstance(answers, list)
        for (_, batch), resp in zip(ask_list, answers, strict=True):
            if isinstance(resp, m.Want):
                lacking.update(batch[i].item for i in resp.indices if 0 <= i < len(batch))
            else:
                unknown.update(e.item for e in batch)
    # A position is restored only when a majority (me included) hold my version.
    puts: dict[str, tuple[NodeRef, list[Entry]]] = {}
    mine: list[Entry] = []
    for _, others in plans:
        agree = 1 + sum(1 for o in others if o.item not in lacking and o.item not in unknown)
        if agree < MAJORITY:
            continue
        for other in others:
            if other.item not in lacking:
                continue
            owner = owners[other.point]
            if owner.peer_id == core.me.peer_id:
                mine.append(other)
            else:
                puts.setdefault(owner.peer_id, (owner, []))[1].append(other)
    stored = 0
    if mine:
        _, calls = core.handle_message(core.me.peer_id, m.Put(tuple(mine)), 0.0)
        stored += len(mine)
        if calls:
            yield Background(calls)
    put_calls = [
        Call(node, m.Put(tuple(page))) for node, batch in puts.values() for page in pages(batch)
    ]
    if put_calls:
        answers = yield Parallel(put_calls)
        assert isinstance(answers, list)
        for call, resp in zip(put_calls, answers, strict=True):
            if isinstance(resp, m.Ok):
                assert isinstance(call.msg, m.Put)
                stored += len(call.msg.entries)
    core.counters["positions_rebuilt"] += stored
    return stored
