"""Multi-step ring work as generators, carried by a driver.

Each operation yields what it needs sent and is resumed with the answers:

- ``Call(node, msg)``: resumed with the response, or None if the node failed
  (unreachable, timed out, closed); the operation then forgets that node and
  tries its next candidate.
- ``Parallel(calls)``: resumed with the list of responses (None for failures).
- ``Background(calls)``: resumed at once with None; the driver sends them
  without waiting (replicas, relayed broadcasts) and bounds how many it keeps.

Routing is iterative: the originator asks each hop itself, so every hop is
one request/response on the mesh and a dead hop costs one failure, not a lost
chain. The simulator drives these synchronously; the asyncio node awaits its
transport for each call.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TypeVar

from peerpool.chord import messages as m
from peerpool.chord.core import Call, ChordCore, pages
from peerpool.chord.ring import RING_BITS, RING_SIZE
from peerpool.chord.storage import Entry, Value
from peerpool.chord.types import NodeRef, between, node_id
from peerpool.errors import ChordJoinError, ChordLookupError

#: A lookup that has not arrived after this many hops is looping on a broken ring.
MAX_HOPS = 64
#: keys(): nodes visited at most on one walk round the ring.
MAX_WALK = 1 << 16

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Parallel:
    calls: list[Call]


@dataclass(frozen=True, slots=True)
class Background:
    calls: list[Call]


Step = Call | Parallel | Background
Op = Generator[Step, object, T]


def _call(node: NodeRef, msg: m.Message) -> Op[m.Message | None]:
    resp = yield Call(node, msg)
    return resp  # type: ignore[return-value]  # the driver sends back a Message or None


def _forget(core: ChordCore, node: NodeRef) -> None:
    core.counters["peer_failed"] += 1
    core.routing.remove(node.peer_id)


def route(
    core: ChordCore, point: int, msg: m.Message, first: list[NodeRef] | None = None
) -> Op[tuple[m.Message, NodeRef, int]]:
    """Send ``msg`` hop by hop towards the owner of ``point``.

    Returns the owner's answer (anything but Next), who gave it, and the hops
    (remote requests) it took; 0 when this node owns the point itself.
    """
    point %= RING_SIZE
    me = core.me.peer_id
    if first is None:
        if core.owns(point):
            local, calls = core.handle_message(me, msg, 0.0)
            if calls:
                yield Background(calls)
            core.hops[0] += 1
            return local, core.me, 0
        first, owner = core.next_hops(point)
        guess = None if owner else core.routing.owner_guess(point)
        if guess is not None and all(n.peer_id != guess.peer_id for n in first):
            first = [guess, *first]
    candidates = list(first)
    # A node is asked again only with more dead peers to skip than last time:
    # the successor of a dead owner refuses until told its predecessor is dead.
    asked: dict[str, int] = {}
    dead: list[str] = []

    def fresh(node: NodeRef) -> bool:
        return node.peer_id not in dead and asked.get(node.peer_id, -1) < len(dead)

    hops = 0
    while hops < MAX_HOPS:
        candidates = [c for c in candidates if fresh(c)]
        if not candidates:
            # Every hop we were pointed at failed: start again from what we know.
            own, _ = core.next_hops(point, skip=dead)
            candidates = [c for c in own if fresh(c) and c.peer_id != me]
            if not candidates:
                raise ChordLookupError(f"no live node to route to (asked {len(asked)})")
        node = candidates[0]
        if node.peer_id == me:
            asked[me] = len(dead)
            if core.owns(point, dead):
                mine, calls = core.handle_message(me, _skipping(msg, dead), 0.0)
                if calls:
                    yield Background(calls)
                core.hops[hops] += 1
                return mine, core.me, hops
            continue
        resp = yield from _call(node, _skipping(msg, dead))
        hops += 1
        asked[node.peer_id] = len(dead)
        if resp is None:
            _forget(core, node)
            dead.append(node.peer_id)
            continue
        if isinstance(resp, m.Error):
            core.counters["peer_error"] += 1
            continue
        if isinstance(resp, m.Next):
            # The answer's hops first; ours stay behind as fall-backs.
            candidates = [*resp.nodes, *candidates[1:]]
            continue
        core.hops[hops] += 1
        return resp, node, hops
    raise ChordLookupError(f"no owner after {MAX_HOPS} hops")


def _skipping(msg: m.Message, dead: list[str]) -> m.Message:
    if dead and isinstance(msg, (m.Get, m.Find, m.Put)):
        return replace(msg, skip=tuple(dead[-m.MAX_SKIP :]))
    return msg


def get_position(core: ChordCore, method: int, position: int) -> Op[Value | None]:
    """The value at one of a key's positions (None: its owner holds nothing there)."""
    resp, _, _ = yield from route(core, position, m.Get(method, position))
    if isinstance(resp, m.Found) and resp.entry.value is not None:
        return resp.entry.value
    if isinstance(resp, (m.Found, m.Missing)):
        return None
    raise ChordLookupError(f"unexpected answer {type(resp).__name__} to a get")


#: A position whose owner's group answer did not settle it: route it on its own.
UNSETTLED = object()

Group = tuple[NodeRef, list[tuple[int, int]]]


def plan_get(
    core: ChordCore, items: list[tuple[int, int]]
) -> tuple[list[Group], list[tuple[int, int]]]:
    """``(method, position)`` items grouped by the node likely to own them, so a
    get costs one request per owner rather than one per position; the rest
    (mine, or no owner known from here) are routed one by one."""
    groups: dict[str, Group] = {}
    alone: list[tuple[int, int]] = []
    for method, position in items:
        point = position % RING_SIZE
        guess = None if core.owns(point) else core.routing.owner_guess(point)
        if guess is None:
            alone.append((method, position))
        else:
            groups.setdefault(guess.peer_id, (guess, []))[1].append((method, position))
    return list(groups.values()), alone


def get_group(core: ChordCore, node: NodeRef, items: list[tuple[int, int]]) -> Op[list[object]]:
    """One GetMany to ``node``: per item its value, None (missing or deleted) or
    UNSETTLED (not its owner after all, or it failed: route that item alone)."""
    resp = yield from _call(node, m.GetMany(tuple(items)))
    if resp is None:
        _forget(core, node)
    if not isinstance(resp, m.Answers) or len(resp.items) != len(items):
        if resp is not None:
            core.counters["peer_error"] += 1
        return [UNSETTLED] * len(items)
    out: list[object] = []
    for item in resp.items:
        if isinstance(item, str):
            out.append(UNSETTLED)
        else:
            out.append(None if item is None else item.value)
    return out


def find_owner(core: ChordCore, point: int) -> Op[tuple[NodeRef, int]]:
    """The node responsible for ``point``, and the hops it took to learn it."""
    resp, node, hops = yield from route(core, point, m.Find(point))
    if isinstance(resp, m.State):
        return resp.node, hops
    if node is core.me:
        return core.me, hops
    raise ChordLookupError(f"unexpected answer {type(resp).__name__} to a find")


def put_entries(core: ChordCore, entries: list[Entry]) -> Op[None]:
    """Store entries on their owners: one Put per owner, in parallel. Owners
    this node cannot tell from its tables are looked up first (one lookup per
    owner's arc, not per entry); whatever an owner refuses (the ring moved)
    is routed one by one."""
    groups: dict[str, tuple[NodeRef, list[Entry]]] = {}
    local: list[Entry] = []
    unknown: list[Entry] = []
    routed: list[Entry] = []
    guess_owner = core.routing.owner_guesser()
    for entry in entries:
        if core.owns(entry.point):
            local.append(entry)
            continue
        guess = guess_owner(entry.point)
        if guess is not None:
            groups.setdefault(guess.peer_id, (guess, []))[1].append(entry)
        else:
            unknown.append(entry)
    if unknown:
        owners = yield from find_owners(core, [e.point for e in unknown])
        for entry in unknown:
            owner = owners.get(entry.point)
            if owner is None or owner.peer_id == core.me.peer_id:
                routed.append(entry)
            else:
                groups.setdefault(owner.peer_id, (owner, []))[1].append(entry)
    if local:
        _, calls = core.handle_message(core.me.peer_id, m.Put(tuple(local)), 0.0)
        if calls:
            yield Background(calls)
    if groups:
        targets = list(groups.values())
        answers = yield Parallel([Call(node, m.Put(tuple(group))) for node, group in targets])
        assert isinstance(answers, list)
        for (node, group), resp in zip(targets, answers, strict=True):
            if resp is None:
                _forget(core, node)
                routed.extend(group)
            elif isinstance(resp, m.Want):
                routed.extend(group[i] for i in resp.indices if 0 <= i < len(group))
            elif not isinstance(resp, m.Ok):
                routed.extend(group)
    for entry in routed:
        # One entry per Put: a non-owner answers it with Next, as it would a
        # Get, so it is routed hop by hop with the same dead-peer hints.
        resp, _, _ = yield from route(core, entry.point, m.Put((entry,)))
        if not isinstance(resp, m.Ok):
            raise ChordLookupError(f"the owner of a position refused it ({type(resp).__name__})")


def find_owners(
    core: ChordCore, points: list[int], max_lookups: int | None = None
) -> Op[dict[int, NodeRef]]:
    """The owner of each point, from my own tables where they tell it exactly
    (my arc, the successor list's span); otherwise by routed lookups, each of
    which teaches an owner's whole arc (its State names its predecessor), so
    the lookups are one per owner met, not one per point. A point whose
    lookup failed (or past ``max_lookups``) is left out."""
    found: dict[int, NodeRef] = {}
    arcs: list[tuple[int, NodeRef]] = []  # (predecessor id, owner)
    lookups = 0
    for point in points:
        if point in found:
            continue
        if core.owns(point):
            found[point] = core.me
            continue
        hops, exact = core.routing.next_hops(point, 1)
        if exact and hops:
            found[point] = hops[0]
            continue
        known = next((node for pred, node in arcs if between(point, pred, node.id)), None)
        if known is not None:
            found[point] = known
            continue
        if max_lookups is not None and lookups >= max_lookups:
            continue
        lookups += 1
        try:
            resp, _, _ = yield from route(core, point, m.Find(point))
        except ChordLookupError:  # that point is routed (or waits) on its own
            continue
        if isinstance(resp, m.State):
            found[point] = resp.node
            if resp.predecessor is not None:
                arcs.append((resp.predecessor.id, resp.node))
    return found


def join(core: ChordCore, bootstrap: NodeRef) -> Op[None]:
    """Join through ``bootstrap``: find my successor, take my arc and the replicas
    I now hold from it, then tell it I am its predecessor."""
    if bootstrap.peer_id == core.me.peer_id:
        raise ChordJoinError("cannot join through this node itself")
    try:
        resp, _, _ = yield from route(core, core.me.id, m.Find(core.me.id), first=[bootstrap])
    except ChordLookupError as exc:
        raise ChordJoinError(f"bootstrap {bootstrap.peer_id} did not answer: {exc}") from exc
    if not isinstance(resp, m.State) or resp.node.peer_id == core.me.peer_id:
        raise ChordJoinError(f"bootstrap answered {type(resp).__name__}, not a ring member's state")
    if core.id_choices > 1 and core.id_movable:
        resp = yield from _choose_id(core, bootstrap, resp)
    me = core.me
    succ = resp.node
    core.storing = True
    core.routing.set_successors([succ, *resp.successors])
    pred = resp.predecessor
    if pred is not None and pred.peer_id != me.peer_id:
        core.routing.predecessor = pred
        core.routing.set_successors(core.routing.successors)  # refresh the sorted view
    # Everything the successor holds outside its own new arc (me, succ]: my arc
    # and the replicas of my predecessors' arcs, which it holds as their replica.
    cursor = None
    while True:
        page = yield from _call(succ, m.Transfer(succ.id, me.id, cursor))
        if not isinstance(page, m.Entries):
            raise ChordJoinError(f"successor {succ.peer_id} did not hand over its keys")
        for entry in page.entries:
            core._saw(entry)
            core.store.put(entry)
        if not page.more or not page.entries:
            break
        cursor = page.entries[-1].item
    yield from _call(succ, m.Notify(me))
    if pred is not None:
        # Its stabilisation would find me within a round; asking it now closes
        # the ring at once so lookups from it stop skipping over me.
        yield from _call(pred, m.Notify(me))


def _choose_id(core: ChordCore, bootstrap: NodeRef, first: m.State) -> Op[m.State]:
    """Take, of the node's ``id_choices`` candidate ids, the one that falls in
    the widest arc (the owner's distance from its predecessor), and return that
    owner's state. With one id per node, arcs (and so keys per node) follow the
    spacing of random points: the widest of n is ln n times the mean. Splitting
    the widest of d sampled arcs at each join keeps them within a small factor
    (measured by ``scripts/chord_sim.py``) with one position per node, so
    routing state stays O(log n), unlike virtual nodes. Ties keep the lower
    choice; a candidate whose lookup fails is passed over."""
    best, best_arc, best_state = 0, _arc(first), first
    for choice in range(1, core.id_choices):
        point = node_id(core.me.peer_id, choice)
        try:
            resp, _, _ = yield from route(core, point, m.Find(point), first=[bootstrap])
        except ChordLookupError:
            core.counters["id_choice_failed"] += 1
            continue
        if isinstance(resp, m.State) and resp.node.peer_id != core.me.peer_id:
            arc = _arc(resp)
            if arc > best_arc:
                best, best_arc, best_state = choice, arc, resp
    if best:
        core.take_choice(best)
    return best_state


def _arc(state: m.State) -> int:
    """The width of the arc ``state.node`` owns (the whole ring if it knows no predecessor)."""
    if state.predecessor is None:
        return RING_SIZE
    return (state.node.id - state.predecessor.id) % RING_SIZE or RING_SIZE


def stabilise(core: ChordCore) -> Op[None]:
    """Ask my successor for its predecessor and list; adopt a closer one; notify it."""
    while core.routing.successors:
        succ = core.routing.successor
        resp = yield from _call(succ, m.GetState())
        if not isinstance(resp, m.State):
            _forget(core, succ)
            continue
        core.routing.adopt_successor_list(succ, resp.successors)
        pred = resp.predecessor
        if pred is not None and core.routing.consider_successor(pred):
            succ = pred
        if core.storing:
            yield from _call(succ, m.Notify(core.me))
        return


def check_predecessor(core: ChordCore) -> Op[None]:
    pred = core.routing.predecessor
    if pred is not None:
        resp = yield from _call(pred, m.Ping())
        if resp is None:
            _forget(core, pred)


def fix_fingers(core: ChordCore) -> Op[int]:
    """Refresh the whole finger table; one lookup per distinct finger (O(log n))."""
    r = core.routing
    lookups = 0
    index = 0
    while index < RING_BITS and r.successors:
        start = r.finger_start(index)
        if between(start, core.me.id, r.successor.id):
            r.set_finger(index, r.successor)
            index += 1
            continue
        try:
            owner, _ = yield from find_owner(core, start)
        except ChordLookupError:
            return lookups
        lookups += 1
        r.set_finger(index, owner)
        index += 1
        # Fingers whose start falls before the owner just found have the same owner.
        while index < RING_BITS and between(r.finger_start(index), core.me.id, owner.id):
            r.set_finger(index, owner)
            index += 1
    return lookups


def hand_off(core: ChordCore, now_ms: int) -> Op[None]:
    """Leave the ring: everything held goes to the successor (which now owns my arc),
    neighbours close the ring over me, and fingers hear of it by broadcast."""
    r = core.routing
    entries = list(core.store.entries())
    for succ in list(r.successors):
        delivered = True
        for page in pages(entries):
            resp = yield from _call(succ, m.Put(tuple(page), replica=True))
            if not isinstance(resp, m.Ok):
                delivered = False
                break
        if delivered:
            break
        _forget(core, succ)
    leaving = m.Leaving(core.me, r.predecessor, tuple(r.successors))
    around = [*r.successors[:1], *([r.predecessor] if r.predecessor else [])]
    neighbours = {n.peer_id: n for n in around}
    if neighbours:
        yield Parallel([Call(n, leaving) for n in neighbours.values()])
    note = m.Broadcast(os.urandom(16), now_ms, 0, core.me.id, core.me)
    core.relay.accept(note.msg_id, note.sent_ms, 0, now_ms / 1000.0)
    calls = core.broadcast_calls(note, core.me.id)
    if calls:
        yield Background(calls)
    core.store = type(core.store)()
    core.storing = False
    r.predecessor = None


def walk(core: ChordCore) -> Op[dict[bytes, Entry]]:
    """Every key on the ring with its newest entry: one arc per node, clockwise.

    Each node is asked for ``(previous node, it]``, its own arc, so each entry
    comes from its owner once; O(n) requests, as py2p's keys() costs a
    broadcast per set.
    """
    found: dict[bytes, Entry] = {}

    def take(entries: tuple[Entry, ...] | list[Entry]) -> None:
        for entry in entries:
            k = entry.key.encode("utf-8") if isinstance(entry.key, str) else entry.key
            held = found.get(k)
            if held is None or entry.newer_than(held):
                found[k] = entry

    def arc(node: NodeRef, start: int, end: int) -> Op[None]:
        cursor = None
        while True:
            page = yield from _call(node, m.Transfer(start, end, cursor))
            if not isinstance(page, m.Entries):
                raise ChordLookupError(f"node {node.peer_id} did not list its keys")
            take(page.entries)
            if not page.more or not page.entries:
                return
            cursor = page.entries[-1].item

    me = core.me
    if core.routing.alone:
        take(list(core.store.entries()))
        return found
    prev, cur = me, core.routing.successor
    first = cur
    for _ in range(MAX_WALK):
        state = yield from _call(cur, m.GetState())
        if not isinstance(state, m.State):
            raise ChordLookupError(f"node {cur.peer_id} did not answer during keys()")
        yield from arc(cur, prev.id, cur.id)
        nxt = state.successors[0] if state.successors else me
        if nxt.peer_id == me.peer_id:
            take(list(core.store.in_range(cur.id, me.id)))
            break
        if nxt.peer_id == first.peer_id:
            # Not a member (after unjoin): the arc up to me belongs to the first node.
            yield from arc(first, cur.id, me.id)
            break
        prev, cur = cur, nxt
    return found
