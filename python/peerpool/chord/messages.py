"""The ring protocol's messages (requests and responses) and their limits.

wire.py encodes and decodes them; each is one request or one response of the
``/peerpool/chord/1.0.0`` request/response protocol on the mesh node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peerpool.chord.storage import Entry, Item
from peerpool.chord.types import NodeRef

#: 2: a node reference carries the id choice it took (``NodeRef.choice``).
VERSION = 2
POSITION_BYTES = 64
#: Entries in one PUT/ENTRIES page and nodes in one reply: the peer's
#: memory for a message is bounded by these times the per-item limits.
MAX_ENTRIES = 4096
MAX_NODES = 32
MAX_SYNC = 16384
MAX_SKIP = 8
#: Positions in one GetMany: a key's five, or many keys' at once.
MAX_GET_ITEMS = 4096
#: A message as a whole: the mesh node's own frame limit (go-libp2p's 50 MiB).
MAX_MESSAGE_BYTES = 50 * 1024 * 1024
#: The largest value accepted: bounded so a page of entries stays below the
#: message limit (the node's own limit may be lower).
MAX_VALUE_BYTES = 4 * 1024 * 1024


# --- requests ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Get:
    """Ask for one position: answered by Found/Missing from its owner, Next elsewhere."""

    method: int
    position: int
    skip: tuple[str, ...] = ()  # peers the asker found dead: route around them


@dataclass(frozen=True, slots=True)
class GetMany:
    """Ask one node for several positions at once (one request per owner, not
    one per position): answered by Answers, item by item."""

    items: tuple[tuple[int, int], ...]  # (method, position)
    skip: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Find:
    """Route to the owner of ``point``: it answers with its State, others with Next."""

    point: int
    skip: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Put:
    """Store entries. ``replica``: the sender is their owner, store without routing."""

    entries: tuple[Entry, ...]
    replica: bool = False
    skip: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GetState:
    """Ask a node for its predecessor and successor list (stabilisation)."""


@dataclass(frozen=True, slots=True)
class Notify:
    """``node`` thinks it may be the receiver's predecessor."""

    node: NodeRef


@dataclass(frozen=True, slots=True)
class Transfer:
    """Entries whose ring position is in ``(start, end]``, after ``cursor``."""

    start: int
    end: int
    cursor: Item | None = None
    limit: int = 1024


@dataclass(frozen=True, slots=True)
class Sync:
    """An owner lists what it holds; the replica answers Want with what it lacks."""

    items: tuple[tuple[int, int, int], ...]  # (method, position, version)


@dataclass(frozen=True, slots=True)
class Forget:
    """The owner collected these tombstones (every replica held them): drop
    each one still held at exactly that version."""

    items: tuple[tuple[int, int, int], ...]  # (method, position, version)


@dataclass(frozen=True, slots=True)
class Leaving:
    """The sender leaves: its predecessor and successors so the ring closes over it."""

    node: NodeRef
    predecessor: NodeRef | None
    successors: tuple[NodeRef, ...]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A relayed announcement: ``departed`` left or died. Deduplicated by ``msg_id``,
    dropped past ``hops`` or ``age`` (see relay.py); ``limit`` bounds the ring arc
    the receiver relays it over (El-Ansary's broadcast over fingers)."""

    msg_id: bytes
    sent_ms: int
    hops: int
    limit: int
    departed: NodeRef


# --- responses ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    pass


@dataclass(frozen=True, slots=True)
class Next:
    """Not mine: ask these, best first. ``owner``: the first one owns the position."""

    nodes: tuple[NodeRef, ...]
    owner: bool = False


@dataclass(frozen=True, slots=True)
class Found:
    entry: Entry


@dataclass(frozen=True, slots=True)
class Missing:
    """The owner of the position holds nothing there: an answer, not a timeout."""


#: An Answers item the receiver does not own (or could not fit): ask elsewhere.
NOT_MINE = "not_mine"


@dataclass(frozen=True, slots=True)
class Answers:
    """GetMany's answer, one per item in order: the entry held (possibly a
    tombstone), None when the owner holds nothing there, or NOT_MINE."""

    items: tuple[Entry | str | None, ...]


@dataclass(frozen=True, slots=True)
class State:
    node: NodeRef
    predecessor: NodeRef | None
    successors: tuple[NodeRef, ...]


@dataclass(frozen=True, slots=True)
class Entries:
    entries: tuple[Entry, ...]
    more: bool = False


@dataclass(frozen=True, slots=True)
class Want:
    indices: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Error:
    """The receiver refused the request (``code`` short, like "bad_request")."""

    code: str


Message = (
    Ping | Get | Find | Put | GetState | Notify | Transfer | Sync | Leaving | Broadcast
    | GetMany | Forget | Ok | Next | Found | Missing | State | Entries | Want | Error | Answers
)  # fmt: skip

KINDS: dict[type, int] = {
    Ping: 1, Get: 2, Put: 3, GetState: 4, Notify: 5, Transfer: 6, Sync: 7, Leaving: 8,
    Broadcast: 9, Find: 10, GetMany: 11, Forget: 12,
    Ok: 64, Next: 65, Found: 66, Missing: 67, State: 68, Entries: 69,
    Want: 70, Error: 71, Answers: 72,
}  # fmt: skip
