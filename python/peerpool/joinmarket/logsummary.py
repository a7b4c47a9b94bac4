"""Log volume that does not grow with an attack: counts per cause, one line per interval.

An attacker controls how many connections fail and why; a log line per event
lets them fill an operator's disk (issue 9: 90,109 warnings for 10,000
connection cycles). :class:`CauseSummary` counts events by cause and writes at
most one line per ``interval`` with the counts, plus the first event of each
new cause at once so that a new kind of trouble is seen without delay.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable

MAX_CAUSES = 64  # distinct causes kept per interval; the rest count as "other"
_VARYING = re.compile(r"[0-9]+|'[^']*'|\"[^\"]*\"")


def cause_of(reason: str) -> str:
    """The part of a reason that names its kind: before the first ':', with
    numbers and quoted values (nicks, sizes) taken out."""
    head = reason.split(":", 1)[0]
    return _VARYING.sub("_", head)[:80]


class CauseSummary:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        level: int = logging.INFO,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.level = level
        self.interval = interval
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.total = 0
        self._seen: set[str] = set()
        self._since = clock()

    def add(self, reason: str) -> None:
        cause = cause_of(reason)
        if cause not in self.counts and len(self.counts) >= MAX_CAUSES:
            cause = "other"
        self.counts[cause] += 1
        self.total += 1
        if cause not in self._seen and len(self._seen) < MAX_CAUSES:
            self._seen.add(cause)
            self.logger.log(self.level, "%s: %s (first of its kind)", self.what, reason[:200])
        self.emit_due()

    def emit_due(self) -> bool:
        """Write the summary when the interval is over; True if a line was written."""
        now = self.clock()
        if now - self._since < self.interval:
            return False
        self._since = now
        if not self.counts:
            return False
        parts = ", ".join(f"{n} {cause}" for cause, n in self.counts.most_common(8))
        more = len(self.counts) - 8
        self.logger.log(
            self.level,
            "%s: %d in the last %.0f s: %s%s",
            self.what,
            sum(self.counts.values()),
            self.interval,
            parts,
            f" and {more} more causes" if more > 0 else "",
        )
        self.counts.clear()
        return True
