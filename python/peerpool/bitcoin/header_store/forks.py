"""Fork queries over a store's records: branch tips, ancestors, common ancestors.

Everything walks the runs of :class:`~peerpool.bitcoin.header_store.records.Records`
(one per batch that was connected), never header by header: within a run a
record's ancestor at a height is found by arithmetic, and a walk down a
branch costs a step per fork below it. The
:class:`~peerpool.bitcoin.header_store.HeadersStore` holds its lock around
every call.
"""

from __future__ import annotations

from peerpool.bitcoin.header_store.records import Records


def branch_tips(records: Records) -> list[int]:
    """Records that no record has for parent: the tip of every branch.

    Within a run each record is the parent of the next, so only a run's last
    record can be a tip, and it is one unless a later run starts on it."""
    parents = set(records.run_parents())
    return [rec for rec in records.run_tips() if rec not in parents]


def ancestor_at(records: Records, rec: int, height: int) -> int | None:
    """The ancestor of ``rec`` at ``height`` on its branch (``rec`` itself at
    its own height); None when ``height`` is above ``rec`` or below 0."""
    if height < 0 or height > records.height(rec):
        return None
    while True:
        start = records.run_start(rec)
        first_height = records.height(start)
        if height >= first_height:
            return start + (height - first_height)
        rec = records.parent(start)


def common_ancestor(records: Records, a: int, b: int) -> int:
    """The highest record that is an ancestor of both (or one of them).

    Both branches are brought to the lower height, then the height where they
    meet is found by bisection (below a common ancestor they agree, above it
    they do not), a run walk per step."""
    low = min(records.height(a), records.height(b))
    a_at, b_at = ancestor_at(records, a, low), ancestor_at(records, b, low)
    assert a_at is not None and b_at is not None
    if a_at == b_at:
        return a_at
    lo, hi = 0, low  # they agree at lo (genesis), not at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ancestor_at(records, a_at, mid) == ancestor_at(records, b_at, mid):
            lo = mid
        else:
            hi = mid
    found = ancestor_at(records, a_at, lo)
    assert found is not None
    return found
