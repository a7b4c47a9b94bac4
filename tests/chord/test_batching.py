"""WriteCoalescer (concurrent sets written together) as a state machine, over a
recording fake of the write it runs."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.chord.batching import WriteCoalescer
from peerpool.chord.storage import Entry
from peerpool.errors import ChordLookupError


def _entries(key: str) -> list[Entry]:
    return [Entry(i, i, key, "v", 1) for i in range(5)]


async def test_concurrent_writes_leave_together_and_each_caller_returns() -> None:
    runs: list[list[Entry]] = []

    async def run(entries: list[Entry]) -> None:
        runs.append(entries)
        await asyncio.sleep(0.01)

    writes = WriteCoalescer(run)
    await asyncio.gather(*(writes.write(_entries(f"k{i}")) for i in range(500)))
    assert sum(len(r) for r in runs) == 2500
    assert len(runs) <= 3  # the first set alone at most, then the rest together


async def test_a_failing_batch_is_retried_set_by_set_so_only_the_bad_one_fails() -> None:
    async def run(entries: list[Entry]) -> None:
        await asyncio.sleep(0)
        if any(e.key == "bad" for e in entries):
            raise ChordLookupError("no owner for bad")

    writes = WriteCoalescer(run)
    results = await asyncio.gather(
        *(writes.write(_entries(k)) for k in ("a", "bad", "b", "c")), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "ChordLookupError",
        "NoneType",
        "NoneType",
    ]


async def test_cancel_ends_the_runs_and_the_waiting_callers() -> None:
    started = asyncio.Event()

    async def run(entries: list[Entry]) -> None:
        started.set()
        await asyncio.sleep(60)

    writes = WriteCoalescer(run)
    callers = [asyncio.ensure_future(writes.write(_entries(f"k{i}"))) for i in range(5)]
    await started.wait()
    await asyncio.wait(writes.cancel(), timeout=1)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.gather(*callers)
