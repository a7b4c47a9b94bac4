"""The sans-I/O ring core: one node's state, and its answers to requests.

``ChordCore.handle_message(peer, msg, now)`` is the whole server side: a pure
function of the node's state that returns the response and the follow-up
requests to send without waiting (replication). Multi-step work (lookups,
joins, stabilisation, repair) lives in ops.py as generators that yield
:class:`Call` and get each response back; a driver (the simulator, or the
asyncio node) carries the calls. Nothing here imports asyncio or touches a
socket, and time comes in as an argument.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, replace

from peerpool.chord import messages as m
from peerpool.chord import wire
from peerpool.chord.relay import RelayCache
from peerpool.chord.ring import RING_SIZE
from peerpool.chord.routing import DEFAULT_SUCCESSORS, Routing
from peerpool.chord.storage import Entry, Store
from peerpool.chord.types import MAX_ID_CHOICES, NodeRef, strictly_between
from peerpool.errors import ChordConfigError, ChordMessageError, ChordStateError

#: Copies of each position: its owner and the next ones after it (Chord's "r successors").
DEFAULT_REPLICAS = 3
#: Bytes of entries in one Put/Entries message: under the mesh node's 4 MiB request limit.
PAGE_BYTES = 2 * 1024 * 1024
#: Seconds a delete's tombstone is kept at least (then collected once every
#: replica holds it): a replica cut off for longer could bring the value back.
DEFAULT_TOMBSTONE_TTL = 600.0


@dataclass(frozen=True, slots=True)
class Call:
    """A request to send to ``node``; the driver answers with the response, or None."""

    node: NodeRef
    msg: m.Message


class ChordCore:
    def __init__(
        self,
        me: NodeRef,
        *,
        replicas: int = DEFAULT_REPLICAS,
        successors: int = DEFAULT_SUCCESSORS,
        max_value_bytes: int = m.MAX_VALUE_BYTES,
        tombstone_ttl: float = DEFAULT_TOMBSTONE_TTL,
        id_choices: int = 1,
    ) -> None:
        """``id_choices``: at ``join`` the node looks up that many of its candidate
        ids and takes the one that splits the widest arc (1: always py2p's id)."""
        if replicas < 1 or successors < replicas:
            raise ChordConfigError("need 1 <= replicas <= successors")
        if not 1 <= id_choices <= MAX_ID_CHOICES:
            raise ChordConfigError(f"need 1 <= id_choices <= {MAX_ID_CHOICES}")
        self.me = me
        self.id_choices = id_choices
        self.routing = Routing(me, successors)
        self.store = Store()
        self.replicas = replicas
        self.tombstone_ttl = tombstone_ttl
        self.max_value_bytes = min(max_value_bytes, m.MAX_VALUE_BYTES)
        self.storing = True  # False after unjoin(): route and query, hold nothing
        self.relay = RelayCache()
        self.clock = 0
        self.hops: Counter[int] = Counter()
        self.counters: Counter[str] = Counter()

    # --- versions ----------------------------------------------------------------

    def next_version(self, now_ns: int) -> int:
        """A version above every one seen here (a Lamport clock riding on wall time)."""
        self.clock = max(self.clock + 1, now_ns)
        return self.clock

    def _saw(self, entry: Entry) -> None:
        if entry.version > self.clock:
            self.clock = entry.version

    @property
    def id_movable(self) -> bool:
        """True while nobody knows this node and it holds nothing: its id can change."""
        r = self.routing
        return r.alone and r.predecessor is None and not len(self.store)

    def take_choice(self, choice: int) -> None:
        """Move to candidate id ``choice`` (before joining: no reference to the
        old id is left anywhere)."""
        if not self.id_movable:
            raise ChordStateError("the ring id can only change before the node joins")
        self.me = replace(self.me, choice=choice, id=-1)
        self.routing.me = self.me
        self.routing.fingers.clear()
        self.routing._dirty = True  # distances in its sorted view are measured from me

    # --- ownership ---------------------------------------------------------------

    def owns(self, point: int, skip: Collection[str] = ()) -> bool:
        return self.storing and self.routing.owns(point, skip)

    def primary_entries(self) -> list[Entry]:
        return [e for e in self.store.entries() if self.owns(e.point)]

    def replica_targets(self) -> list[NodeRef]:
        return self.routing.successors[: self.replicas - 1]

    def next_hops(self, point: int, skip: Collection[str] = ()) -> tuple[list[NodeRef], bool]:
        return self.routing.next_hops(point, skip=skip)

    # --- the server side -----------------------------------------------------------

    def handle(self, peer_id: str, data: bytes, now: float) -> tuple[bytes, list[Call]]:
        """A request's bytes in, the response's bytes and follow-up calls out."""
        try:
            msg = wire.decode(data)
        except ChordMessageError as exc:
            # The peer is told and counted; the caller decides whether to drop it.
            self.counters["bad_message"] += 1
            return wire.encode(m.Error(f"bad_message: {exc}"[:255])), []
        response, calls = self.handle_message(peer_id, msg, now)
        return wire.encode(response), calls

    def handle_message(
        self, peer_id: str, msg: m.Message, now: float
    ) -> tuple[m.Message, list[Call]]:
        if isinstance(msg, m.Ping):
            return m.Ok(), []
        if isinstance(msg, m.Get):
            return self._on_get(msg), []
        if isinstance(msg, m.GetMany):
            return self._on_get_many(msg), []
        if isinstance(msg, m.Find):
            return self._on_find(msg), []
        if isinstance(msg, m.Put):
            return self._on_put(msg)
        if isinstance(msg, m.GetState):
            return self.state(), []
        if isinstance(msg, m.Notify):
            if self.storing:
                self.routing.consider_predecessor(msg.node)
            return m.Ok(), []
        if isinstance(msg, m.Transfer):
            return self._on_transfer(msg), []
        if isinstance(msg, m.Sync):
            wanted = tuple(
                i for i, (method, pos, ver) in enumerate(msg.items)
                if self.store.version((method, pos)) < ver
            )  # fmt: skip
            return m.Want(wanted), []
        if isinstance(msg, m.Forget):
            # Only a tombstone at the owner's exact version goes; a newer write stays.
            for method, position, version in msg.items:
                if self.store.discard_tombstone((method, position), version):
                    self.counters["tombstones_collected"] += 1
            return m.Ok(), []
        if isinstance(msg, m.Leaving):
            self._on_leaving(msg)
            return m.Ok(), []
        if isinstance(msg, m.Broadcast):
            return m.Ok(), self._on_broadcast(msg, now)
        self.counters["unexpected_message"] += 1
        return m.Error("unexpected_message"), []

    def state(self) -> m.State:
        return m.State(self.me, self.routing.predecessor, tuple(self.routing.successors))

    def _on_get(self, msg: m.Get) -> m.Message:
        point = msg.position % RING_SIZE
        if self.owns(point, msg.skip):
            entry = self.store.get((msg.method, msg.position))
            if entry is None or entry.value is None:
                return m.Missing()
            return m.Found(entry)
        return self._next(point, msg.skip)

    def _on_get_many(self, msg: m.GetMany) -> m.Message:
        """Each position this node owns is answered from the store; the rest,
        and whatever would push the answer past a page, are NOT_MINE (the
        asker routes those one by one)."""
        out: list[Entry | str | None] = []
        size = 0
        for method, position in msg.items:
            if not self.owns(position % RING_SIZE, msg.skip):
                out.append(m.NOT_MINE)
                continue
            entry = self.store.get((method, position))
            if entry is not None:
                w = weight(entry)
                if size and size + w > PAGE_BYTES:  # the first always fits
                    out.append(m.NOT_MINE)
                    continue
                size += w
            out.append(entry)
        return m.Answers(tuple(out))

    def _on_find(self, msg: m.Find) -> m.Message:
        point = msg.point % RING_SIZE
        return self.state() if self.owns(point, msg.skip) else self._next(point, msg.skip)

    def _next(self, point: int, skip: Collection[str] = ()) -> m.Message:
        nodes, owner = self.routing.next_hops(point, skip=skip)
        if not nodes:
            return m.Error("no_route")
        return m.Next(tuple(nodes), owner)

    def _on_put(self, msg: m.Put) -> tuple[m.Message, list[Call]]:
        refused: list[int] = []
        kept: list[Entry] = []
        for index, entry in enumerate(msg.entries):
            if not self.storing:
                refused.append(index)
                continue
            if not msg.replica and not self.owns(entry.point, msg.skip):
                refused.append(index)
                continue
            self._saw(entry)
            if self.store.put(entry) and not msg.replica:
                kept.append(entry)
        # One message per page for every replica: the driver encodes it once.
        puts = [m.Put(tuple(page), replica=True) for page in pages(kept)]
        calls = [Call(node, put) for node in self.replica_targets() for put in puts]
        if refused and len(msg.entries) == 1 and self.storing:
            # A single routed entry: point the sender onwards, as for a Get.
            return self._next(msg.entries[0].point, msg.skip), calls
        return (m.Want(tuple(refused)) if refused else m.Ok()), calls

    def _on_transfer(self, msg: m.Transfer) -> m.Message:
        limit = max(1, min(msg.limit, m.MAX_ENTRIES))
        chosen, more = self.store.page(
            msg.start % RING_SIZE, msg.end % RING_SIZE, msg.cursor, limit
        )
        # Bounded by bytes too: cut the page where it would pass PAGE_BYTES.
        first = next(pages(chosen), [])
        return m.Entries(tuple(first), more or len(first) < len(chosen))

    def _on_leaving(self, msg: m.Leaving) -> None:
        gone = msg.node.peer_id
        was_pred = self.routing.predecessor is not None and self.routing.predecessor.peer_id == gone
        was_succ = bool(self.routing.successors) and self.routing.successor.peer_id == gone
        self.routing.remove(gone)
        if was_pred and msg.predecessor is not None:
            self.routing.consider_predecessor(msg.predecessor)
        if was_succ:
            self.routing.set_successors([*msg.successors, *self.routing.successors])

    def _on_broadcast(self, msg: m.Broadcast, now: float) -> list[Call]:
        if not self.relay.accept(msg.msg_id, msg.sent_ms, msg.hops, now):
            return []
        if msg.departed.peer_id != self.me.peer_id:
            self.routing.remove(msg.departed.peer_id)
        return self.broadcast_calls(msg, msg.limit)

    def broadcast_calls(self, msg: m.Broadcast, limit: int) -> list[Call]:
        """Relay over my known nodes inside ``(me, limit)``, each given the arc up to the next.

        Every node in the arc is reached once (El-Ansary et al.'s broadcast over
        a Chord finger table): each receiver covers the arc up to the next
        finger the sender used.
        """
        inside = [
            n for n in self.routing.known()
            if n.peer_id != msg.departed.peer_id and strictly_between(n.id, self.me.id, limit)
        ]  # fmt: skip
        calls = []
        for i, node in enumerate(inside):
            end = inside[i + 1].id if i + 1 < len(inside) else limit
            relayed = m.Broadcast(msg.msg_id, msg.sent_ms, msg.hops + 1, end, msg.departed)
            calls.append(Call(node, relayed))
        return calls

    # --- local reads for the API ----------------------------------------------------

    def dump_data(self, start: int, end: int | None) -> dict[bytes, dict[int, bytes | str]]:
        """py2p's dump_data: this node's values whose position is in ``[start, end)``.

        py2p keeps a position when ``distance(start, p) < distance(end, p)``;
        ``end`` None means everything (py2p documents it, its code compares with None).
        """
        from peerpool.chord.ring import distance  # ring.py imports nothing from here
        from peerpool.chord.types import METHODS

        out: dict[bytes, dict[int, bytes | str]] = {name.encode(): {} for name in METHODS}
        for entry in self.store.entries():
            if entry.value is None:
                continue
            if end is None or distance(start, entry.position) < distance(end, entry.position):
                out[METHODS[entry.method].encode()][entry.position] = entry.value
        return out


def pages(entries: Iterable[Entry], max_bytes: int = PAGE_BYTES) -> Iterator[list[Entry]]:
    """Entries cut into lists that each fit one message (count and bytes).

    Every write passes here a few times on its way (owner, replicas, the
    batcher), so the common case, a list that fits one page, is one pass of
    additions, without a list built per page."""
    chosen = entries if isinstance(entries, list) else list(entries)
    if not chosen:
        return
    if len(chosen) <= m.MAX_ENTRIES and sum(map(weight, chosen)) <= max_bytes:
        yield chosen
        return
    page: list[Entry] = []
    size = 0
    for entry in chosen:
        w = weight(entry)
        if page and (size + w > max_bytes or len(page) >= m.MAX_ENTRIES):
            yield page
            page, size = [], 0
        page.append(entry)
        size += w
    if page:
        yield page


def weight(entry: Entry) -> int:
    """An upper bound of an entry's bytes on the wire (a str's UTF-8 is at most 4 bytes a character)."""
    key, value = entry.key, entry.value
    size = 96 + (len(key) << 2 if isinstance(key, str) else len(key))
    if value is None:
        return size
    return size + (len(value) << 2 if isinstance(value, str) else len(value))
