"""The entries a node holds: one per (method, position), newest version wins.

A key is stored under its five positions (py2p's five hash tables), each entry
carrying the key itself (so a range can be handed to another node and keys()
can list them) and a version that orders writes: replication and repair merge
copies by version, so an old copy never overwrites a newer one and a delete
(a tombstone, value None) is not undone by a late replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from peerpool.chord.ring import RING_SIZE
from peerpool.chord.types import between

Value = bytes | str
#: (method, position): where an entry lives; position unreduced (SHA-512 too).
Item = tuple[int, int]


class Entry(NamedTuple):
    # A NamedTuple, not a frozen dataclass: decoding builds one per entry
    # received, and a tuple is several times cheaper to make.
    method: int
    position: int
    key: Value
    value: Value | None  # None: deleted (a tombstone)
    version: int

    @property
    def item(self) -> Item:
        return (self.method, self.position)

    @property
    def point(self) -> int:
        """Where on the ring the entry belongs (py2p reduces the SHA-512 value mod 2**384)."""
        return self.position % RING_SIZE

    def newer_than(self, other: Entry) -> bool:
        # Ties of version (two writers in the same instant) are broken by the
        # value so that every replica settles on the same one.
        return (self.version, _order(self.value)) > (other.version, _order(other.value))


def _order(value: Value | None) -> tuple[int, bytes]:
    if value is None:
        return (2, b"")
    if isinstance(value, str):
        return (1, value.encode("utf-8"))
    return (0, value)


class Store:
    """The entries of one node, looked up by (method, position)."""

    def __init__(self) -> None:
        self._entries: dict[Item, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, item: Item) -> Entry | None:
        return self._entries.get(item)

    def put(self, entry: Entry) -> bool:
        """Keep ``entry`` if it is newer than what is held; True if it was kept."""
        held = self._entries.get(entry.item)
        if held is not None and not entry.newer_than(held):
            return False
        self._entries[entry.item] = entry
        return True

    def version(self, item: Item) -> int:
        held = self._entries.get(item)
        return -1 if held is None else held.version

    def discard(self, item: Item) -> None:
        self._entries.pop(item, None)

    def discard_tombstone(self, item: Item, version: int) -> bool:
        """Drop the tombstone at ``item`` if it is still exactly ``version``
        (a newer write since then stays). True if dropped."""
        held = self._entries.get(item)
        if held is None or held.value is not None or held.version != version:
            return False
        del self._entries[item]
        return True

    def entries(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def in_range(self, start: int, end: int) -> Iterator[Entry]:
        """Entries whose ring point is in ``(start, end]`` (the whole ring if equal)."""
        for entry in list(self._entries.values()):
            if between(entry.point, start, end):
                yield entry

    def page(
        self, start: int, end: int, cursor: Item | None, limit: int
    ) -> tuple[list[Entry], bool]:
        """Up to ``limit`` entries of ``(start, end]`` after ``cursor``, in item order."""
        chosen = sorted(
            (e for e in self.in_range(start, end) if cursor is None or e.item > cursor),
            key=lambda e: e.item,
        )
        return chosen[:limit], len(chosen) > limit
