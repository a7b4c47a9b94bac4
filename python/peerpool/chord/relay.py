"""Relayed broadcasts: deduplicated, bounded, and dropped when too old.

A broadcast (a node's departure) travels over fingers, each receiver relaying
it only within the arc it was given, so every node gets it about once. Still,
ring changes can deliver it twice and a hostile node can replay it: the cache
remembers the ids it has seen (a bounded, insertion-ordered map, oldest
evicted first), refuses a message older than ``max_age`` (py2p drops
broadcasts older than 60 s) or relayed more than ``max_hops`` times.
"""

from __future__ import annotations

from collections import OrderedDict

#: py2p's age limit for broadcasts (its base.py drops those older than 60 s).
MAX_AGE_S = 60.0
#: A broadcast over fingers reaches every node in at most log2(n) relays.
MAX_HOPS = 64
MAX_REMEMBERED = 8192


class RelayCache:
    def __init__(
        self, max_age: float = MAX_AGE_S, max_hops: int = MAX_HOPS, size: int = MAX_REMEMBERED
    ) -> None:
        self.max_age = max_age
        self.max_hops = max_hops
        self.size = size
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self.dropped = {"duplicate": 0, "too_old": 0, "too_many_hops": 0}

    def accept(self, msg_id: bytes, sent_ms: int, hops: int, now: float) -> bool:
        """Should this broadcast be acted on and relayed? Records it if so."""
        if msg_id in self._seen:
            self.dropped["duplicate"] += 1
            return False
        # A clock ahead of ours is not an old message; the age is checked
        # against when it says it was sent, so a replay past 60 s is refused.
        if now - sent_ms / 1000.0 > self.max_age:
            self.dropped["too_old"] += 1
            return False
        if hops > self.max_hops:
            self.dropped["too_many_hops"] += 1
            return False
        self._seen[msg_id] = now
        self._expire(now)
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            msg_id, seen_at = next(iter(self._seen.items()))
            if len(self._seen) <= self.size and now - seen_at <= self.max_age:
                break
            # Forgetting an id older than max_age is safe: a copy of it
            # arriving now is refused as too old anyway.
            del self._seen[msg_id]
