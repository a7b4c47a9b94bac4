"""The five-position majority of py2p: a value wins with more than two answers.

A key is stored under its five hashes, each owned by (usually) a different
node. Each answer is a value or "missing"; the vote is decided as soon as one
of them has ``MAJORITY`` (3) answers, so a get needs only the three fastest
agreeing owners, and a lying or silent node owning one or two positions is
outvoted. It is undecidable once no answer can still reach the majority.
"""

from __future__ import annotations

from collections import Counter

from peerpool.chord.storage import Value
from peerpool.chord.types import MAJORITY, METHODS

_MISSING = object()


class Vote:
    def __init__(self, voters: int = len(METHODS), majority: int = MAJORITY) -> None:
        self.voters = voters
        self.majority = majority
        self.counts: Counter[object] = Counter()
        self.failed = 0

    def add(self, answer: Value | None) -> None:
        """One position's answer: its value, or None for "its owner holds nothing"."""
        self.counts[_MISSING if answer is None else answer] += 1

    def fail(self) -> None:
        """One position could not be answered (its owners unreachable)."""
        self.failed += 1

    @property
    def pending(self) -> int:
        return self.voters - self.failed - sum(self.counts.values())

    @property
    def leader(self) -> tuple[object, int]:
        if not self.counts:
            return _MISSING, 0
        return self.counts.most_common(1)[0]

    @property
    def decided(self) -> bool:
        return self.leader[1] >= self.majority

    @property
    def hopeless(self) -> bool:
        """No answer can reach the majority any more, whatever is still pending."""
        return not self.decided and self.leader[1] + self.pending < self.majority

    def result(self) -> tuple[bool, Value | None]:
        """(decided, value); value None means the majority says the key is missing."""
        answer, count = self.leader
        if count < self.majority:
            return False, None
        return True, None if answer is _MISSING else answer  # type: ignore[return-value]
