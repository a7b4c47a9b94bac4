"""A node's view of the ring and the routing decisions made from it.

State: the node itself, its predecessor, a successor list (so the ring
survives the death of any few consecutive nodes) and a finger table
(finger ``i`` is the first node at or after ``id + 2**i``). Every node it
knows is kept once in a list sorted by clockwise distance from this node, so
"closest node preceding a point" is one bisection: with fingers at doubling
distances each hop at least halves the distance left, hence O(log n) hops,
and the known nodes (distinct fingers plus successors) are O(log n) too.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable

from peerpool.chord.ring import RING_BITS, RING_SIZE
from peerpool.chord.types import NodeRef, between, strictly_between

#: Successors kept: the ring stays connected unless this many in a row die at once.
DEFAULT_SUCCESSORS = 8


class Routing:
    def __init__(self, me: NodeRef, successors: int = DEFAULT_SUCCESSORS) -> None:
        self.me = me
        self.max_successors = successors
        self.predecessor: NodeRef | None = None
        self.successors: list[NodeRef] = []
        self.fingers: dict[int, NodeRef] = {}
        self.next_finger = 0
        self._known: list[tuple[int, NodeRef]] = []
        self._dirty = True

    # --- what this node knows ---------------------------------------------------

    @property
    def successor(self) -> NodeRef:
        return self.successors[0] if self.successors else self.me

    @property
    def alone(self) -> bool:
        return not self.successors

    def known(self) -> list[NodeRef]:
        """Every distinct node this node routes through (its connections)."""
        return [node for _, node in self._sorted()]

    def owns(self, point: int, skip: Collection[str] = ()) -> bool:
        """Is ``point`` in ``(predecessor, me]``? Alone on the ring, everything is mine.

        With no predecessor known (just joined, or it died), or one the asker
        found dead (``skip``), the node claims the arc from the nearest node it
        knows behind it: answers for a dead predecessor's arc then come from its
        replicas here instead of from nowhere.
        """
        if self.alone:
            return True
        pred = self.predecessor
        if pred is None or pred.peer_id in skip:
            pred = self._nearest_behind(skip)
        return pred is None or between(point, pred.id, self.me.id)

    def next_hops(
        self, point: int, count: int = 3, skip: Collection[str] = ()
    ) -> tuple[list[NodeRef], bool]:
        """Where to ask about ``point``: nodes best first, and whether the first owns it.

        Within the span of the successor list the owner is known exactly (the
        first successor at or after the point); beyond it, the known nodes that
        precede the point, closest first (later ones are fall-backs if the
        first is dead). Nodes in ``skip`` (found dead by the asker) are passed over.
        """
        succs = [n for n in self.successors if n.peer_id not in skip]
        if not succs:
            return [], False
        if between(point, self.me.id, succs[-1].id):
            for i, node in enumerate(succs):
                if between(point, self.me.id, node.id):
                    return succs[i : i + count], True
        target = (point - self.me.id) % RING_SIZE
        known = self._sorted()
        index = bisect.bisect_left(known, target, key=lambda kn: kn[0])
        preceding = [node for _, node in reversed(known[:index]) if node.peer_id not in skip]
        hops = preceding[: count - 1] or succs[: count - 1]
        # Last, the first known node at or after the point: while the ring is
        # still converging (a predecessor here that the nodes behind do not know
        # of yet) greedy hops can circle, and that node is where they meet.
        after = next((n for _, n in known[index:] if n.peer_id not in skip), None)
        if after is not None and all(n.peer_id != after.peer_id for n in hops):
            hops.append(after)
        return hops, False

    def owner_guess(self, point: int) -> NodeRef | None:
        """The node most likely to own ``point`` without asking anyone, or None.

        Exact within the successor list's span. Past it, a list shorter than
        its maximum is probably the whole ring, whose next owner is then the
        first successor (for a node that is not a member: unjoined). A wrong
        guess costs a refusal and a routed retry, never a wrong answer.
        """
        hops, owner = self.next_hops(point, 1)
        if owner:
            return hops[0]
        if self.successors and len(self.successors) < self.max_successors:
            return self.successors[0]
        return None

    def owner_guesser(self) -> Callable[[int], NodeRef | None]:
        """``owner_guess`` for many points: the successors' distances are worked
        out once, then each point is one bisection (a batch of writes asks
        this for every one of its positions)."""
        succs = list(self.successors)
        me = self.me.id
        dists = [(n.id - me) % RING_SIZE for n in succs]
        if not succs or dists != sorted(dists):
            return self.owner_guess
        span = dists[-1]
        beyond = succs[0] if len(succs) < self.max_successors else None

        def guess(point: int) -> NodeRef | None:
            d = (point - me) % RING_SIZE
            if 0 < d <= span:
                return succs[bisect.bisect_left(dists, d)]
            return beyond if d else self.owner_guess(point)

        return guess

    def closest_preceding(self, point: int) -> NodeRef:
        hops, _ = self.next_hops(point, 1)
        return hops[0] if hops else self.me

    # --- changes ---------------------------------------------------------------------

    def set_successors(self, nodes: Iterable[NodeRef]) -> None:
        seen: set[str] = set()
        chosen: list[NodeRef] = []
        for node in nodes:
            if node.peer_id == self.me.peer_id or node.peer_id in seen:
                continue
            seen.add(node.peer_id)
            chosen.append(node)
        chosen.sort(key=lambda n: (n.id - self.me.id) % RING_SIZE)
        self.successors = chosen[: self.max_successors]
        self._dirty = True

    def adopt_successor_list(self, successor: NodeRef, its_list: Iterable[NodeRef]) -> None:
        """Stabilisation: my list is my successor followed by its own list."""
        self.set_successors([successor, *its_list])

    def consider_successor(self, node: NodeRef) -> bool:
        """A node found between me and my successor becomes my successor."""
        if node.peer_id == self.me.peer_id:
            return False
        if self.alone or strictly_between(node.id, self.me.id, self.successor.id):
            self.set_successors([node, *self.successors])
            return True
        return False

    def consider_predecessor(self, node: NodeRef) -> bool:
        """Notify: ``node`` becomes my predecessor if it is closer than the one I have."""
        if node.peer_id == self.me.peer_id:
            return False
        if self.predecessor is None or strictly_between(node.id, self.predecessor.id, self.me.id):
            self.predecessor = node
            self._dirty = True
            if self.alone:
                self.set_successors([node])
            return True
        return False

    def set_finger(self, index: int, node: NodeRef) -> None:
        if node.peer_id == self.me.peer_id:
            self.fingers.pop(index, None)
        else:
            self.fingers[index] = node
        self._dirty = True

    def finger_start(self, index: int) -> int:
        return (self.me.id + (1 << index)) % RING_SIZE

    def take_finger_index(self) -> int:
        """The next finger to refresh, round robin over the table."""
        index = self.next_finger
        self.next_finger = (index + 1) % RING_BITS
        return index

    def remove(self, peer_id: str) -> bool:
        """Forget a node that died or left; True if it was known."""
        found = False
        if self.predecessor is not None and self.predecessor.peer_id == peer_id:
            self.predecessor = None
            found = True
        kept = [n for n in self.successors if n.peer_id != peer_id]
        if len(kept) != len(self.successors):
            self.successors = kept
            found = True
        for index in [i for i, n in self.fingers.items() if n.peer_id == peer_id]:
            del self.fingers[index]
            found = True
        if found:
            self._dirty = True
        return found

    # --- internals ---------------------------------------------------------------------

    def _sorted(self) -> list[tuple[int, NodeRef]]:
        if self._dirty:
            nodes: dict[str, NodeRef] = {}
            for node in (*self.successors, *self.fingers.values()):
                nodes.setdefault(node.peer_id, node)
            if self.predecessor is not None:
                nodes.setdefault(self.predecessor.peer_id, self.predecessor)
            self._known = sorted(
                (((n.id - self.me.id) % RING_SIZE, n) for n in nodes.values()),
                key=lambda kn: kn[0],
            )
            self._dirty = False
        return self._known

    def _nearest_behind(self, skip: Collection[str] = ()) -> NodeRef | None:
        for _, node in reversed(self._sorted()):
            if node.peer_id not in skip:
                return node
        return None
