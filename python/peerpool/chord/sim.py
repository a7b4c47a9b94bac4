"""A ring of ChordCores in one process, driven without sockets.

Every request goes straight to the target core's ``handle_message`` (or
through the byte codec with ``codec=True``); a dead node answers None, as a
timed-out request does on the mesh. Background calls (replicas, relays) are
queued and delivered by ``flush``. This is what lets a 10,000-node ring be
measured (hops, load) where real processes cannot go, and churn be replayed
deterministically from a seed.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TypeVar

from peerpool.chord import messages as m
from peerpool.chord import ops, repair, wire
from peerpool.chord.core import Call, ChordCore
from peerpool.chord.ring import RING_BITS, RING_SIZE, get_hashes
from peerpool.chord.storage import Entry, Value
from peerpool.chord.types import NodeRef, between, check_key, check_value, node_id
from peerpool.chord.vote import Vote
from peerpool.errors import ChordLookupError, NoMajorityError

T = TypeVar("T")
#: Background calls delivered per flush before giving up (a relay storm would be a bug).
MAX_BACKGROUND = 1_000_000


@dataclass
class SimNode:
    core: ChordCore
    alive: bool = True
    liar: bool = False
    requests: Counter[str] = field(default_factory=Counter)


class Simulator:
    def __init__(
        self,
        *,
        replicas: int = 3,
        successors: int = 8,
        codec: bool = False,
        seed: int = 0,
        tombstone_ttl: float = 600.0,
        id_choices: int = 1,
    ) -> None:
        self.replicas = replicas
        self.id_choices = id_choices
        self.tombstone_ttl = tombstone_ttl
        self.successors = successors
        self.codec = codec
        self.rng = random.Random(seed)
        self.nodes: dict[str, SimNode] = {}
        self.now = 1_000_000.0  # seconds; any epoch works, it only has to advance
        self.requests = 0
        self._background: deque[tuple[str, Call]] = deque()
        self._counter = 0

    # --- membership -------------------------------------------------------------------

    def new_node(self) -> ChordCore:
        self._counter += 1
        peer_id = f"sim-{self._counter}-{self.rng.getrandbits(64):016x}"
        core = ChordCore(
            NodeRef(peer_id),
            replicas=self.replicas,
            successors=self.successors,
            tombstone_ttl=self.tombstone_ttl,
            id_choices=self.id_choices,
        )
        self.nodes[peer_id] = SimNode(core)
        return core

    def alive(self) -> list[ChordCore]:
        return [n.core for n in self.nodes.values() if n.alive]

    def build(self, n: int) -> list[ChordCore]:
        """``n`` nodes with converged state set from the sorted ring (an oracle,
        as after enough stabilisation), for measuring routing and load at sizes
        where joining one by one would take too long."""
        cores = [self.new_node() for _ in range(n)]
        if self.id_choices > 1:
            self._choose_ids(cores)
        self.converge()
        return cores

    def _choose_ids(self, cores: list[ChordCore]) -> None:
        """Each node's id choice as ``ops.join`` makes it, the nodes joining in
        turn: the candidate in the widest arc of the ring built so far."""
        ids = sorted(c.me.id for c in self.alive() if c not in cores)
        for core in cores:
            best, best_arc = 0, -1
            for choice in range(self.id_choices if ids else 1):
                point = node_id(core.me.peer_id, choice)
                k = bisect.bisect_left(ids, point)
                # As ops._arc: a ring of one node owns all of it.
                arc = (
                    ((ids[k % len(ids)] - ids[k - 1]) % RING_SIZE or RING_SIZE)
                    if ids
                    else RING_SIZE
                )
                if arc > best_arc:
                    best, best_arc = choice, arc
            if best:
                core.take_choice(best)
            bisect.insort(ids, core.me.id)

    def converge(self) -> None:
        """Set every live node's successors, predecessor and fingers to the truth."""
        ring = sorted(self.alive(), key=lambda c: c.me.id)
        ids = [c.me.id for c in ring]
        count = len(ring)
        for i, core in enumerate(ring):
            r = core.routing
            r.set_successors(
                ring[(i + k) % count].me for k in range(1, min(count, r.max_successors + 1))
            )
            r.predecessor = ring[i - 1].me if count > 1 else None
            r.fingers.clear()
            index = 0
            while index < RING_BITS and count > 1:
                start = r.finger_start(index)
                owner = ring[bisect.bisect_left(ids, start) % count].me
                # Every finger from here whose start the owner covers is the owner
                # too; the first always is, so the loop advances.
                r.set_finger(index, owner)
                index += 1
                while index < RING_BITS and between(r.finger_start(index), core.me.id, owner.id):
                    r.set_finger(index, owner)
                    index += 1
            r.set_successors(r.successors)

    def join(self, core: ChordCore, bootstrap: ChordCore) -> None:
        self.run(core, ops.join(core, bootstrap.me))

    def kill(self, cores: list[ChordCore]) -> None:
        for core in cores:
            self.nodes[core.me.peer_id].alive = False

    # --- maintenance rounds ----------------------------------------------------------

    def stabilise_all(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            for core in self.alive():
                self.run(core, ops.check_predecessor(core))
                self.run(core, ops.stabilise(core))
            self.now += 1.0

    def fix_fingers_all(self) -> None:
        for core in self.alive():
            self.run(core, ops.fix_fingers(core))

    def repair_all(self, collect: bool = False) -> int:
        """Every node's replica repair; ``collect``: and tombstone collection."""
        now_ns = int(self.now * 1e9) if collect else None
        return sum(self.run(core, repair.repair(core, now_ns)) for core in self.alive())

    def rebuild_all(self) -> int:
        """Every node re-stores the lost positions of the keys it owns a position of."""
        return sum(self.run(core, repair.rebuild(core)) for core in self.alive())

    def heal(self, rounds: int = 3) -> None:
        """What the periodic tasks of every node do in a few periods."""
        self.stabilise_all(rounds)
        self.fix_fingers_all()
        self.repair_all()

    # --- the DHT operations, as the asyncio node does them -------------------------------

    def set(self, origin: ChordCore, key: object, value: object | None) -> None:
        k = check_key(key)
        v = None if value is None else check_value(value, origin.max_value_bytes)
        self.now += 1e-3
        version = origin.next_version(int(self.now * 1e9))
        entries = [Entry(i, pos, k, v, version) for i, pos in enumerate(get_hashes(k))]
        self.run(origin, ops.put_entries(origin, entries))

    def get(self, origin: ChordCore, key: object) -> Value | None:
        """The majority value of the key's five positions (None: the majority says
        missing): one GetMany per owner, then the unsettled positions one by one."""
        vote = Vote()
        groups, alone = ops.plan_get(origin, list(enumerate(get_hashes(check_key(key)))))
        for node, items in groups:
            if vote.decided or vote.hopeless:
                break
            answers = self.run(origin, ops.get_group(origin, node, items))
            for item, answer in zip(items, answers, strict=True):
                if answer is ops.UNSETTLED:
                    alone.append(item)
                else:
                    vote.add(answer)  # type: ignore[arg-type]  # a Value or None
        for method, position in alone:
            if vote.decided or vote.hopeless:
                break
            try:
                vote.add(self.run(origin, ops.get_position(origin, method, position)))
            except ChordLookupError:
                vote.fail()
        decided, value = vote.result()
        if not decided:
            raise NoMajorityError(f"no majority for {key!r}: {dict(vote.counts)}")
        return value

    # --- driving ---------------------------------------------------------------------

    def run(self, origin: ChordCore, op: ops.Op[T]) -> T:
        """Carry every step of ``op`` for ``origin``, then flush background work."""
        sender = origin.me.peer_id
        try:
            step = next(op)
            while True:
                if isinstance(step, Call):
                    step = op.send(self._deliver(sender, step))
                elif isinstance(step, ops.Parallel):
                    step = op.send([self._deliver(sender, c) for c in step.calls])
                else:
                    self._background.extend((sender, c) for c in step.calls)
                    step = op.send(None)
        except StopIteration as stop:
            result: T = stop.value
        self.flush()
        return result

    def flush(self) -> None:
        delivered = 0
        while self._background and delivered < MAX_BACKGROUND:
            sender, call = self._background.popleft()
            self._deliver(sender, call)
            delivered += 1

    def _deliver(self, sender: str, call: Call) -> m.Message | None:
        target = self.nodes.get(call.node.peer_id)
        if target is None or not target.alive or not self.nodes[sender].alive:
            return None
        self.requests += 1
        target.requests[type(call.msg).__name__] += 1
        if self.codec:
            data, calls = target.core.handle(sender, wire.encode(call.msg), self.now)
            resp = wire.decode(data)
        else:
            resp, calls = target.core.handle_message(sender, call.msg, self.now)
        self._background.extend((call.node.peer_id, c) for c in calls)
        if target.liar and isinstance(call.msg, m.Get) and isinstance(resp, (m.Found, m.Missing)):
            # A lying owner: a wrong value for everything it owns, "newer" than any.
            key = resp.entry.key if isinstance(resp, m.Found) else b"?"
            resp = m.Found(Entry(call.msg.method, call.msg.position, key, b"lie", 2**63))
        if target.liar and isinstance(call.msg, m.GetMany) and isinstance(resp, m.Answers):
            resp = m.Answers(
                tuple(
                    a if isinstance(a, str) else Entry(method, pos, b"?", b"lie", 2**63)
                    for (method, pos), a in zip(call.msg.items, resp.items, strict=True)
                )
            )
        return resp

    # --- measurements -----------------------------------------------------------------

    def owner_of(self, point: int) -> ChordCore:
        """The true owner of ``point`` among live nodes (the oracle)."""
        ring = sorted(self.alive(), key=lambda c: c.me.id)
        ids = [c.me.id for c in ring]
        return ring[bisect.bisect_left(ids, point % RING_SIZE) % len(ring)]

    def primary_load(self) -> list[int]:
        """Entries each live node holds as owner of their position."""
        return [len(c.primary_entries()) for c in self.alive()]
