"""WriteCoalescer (concurrent sets written together) and PutBatcher as state
machines, over recording fakes of what they run."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.chord import messages as m
from peerpool.chord.batching import PutBatcher, WriteCoalescer
from peerpool.chord.core import Call
from peerpool.chord.driver import Driver
from peerpool.chord.storage import Entry
from peerpool.chord.types import NodeRef
from peerpool.errors import ChordLookupError
from tests.chord.fake_transport import FakeNetwork


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


async def test_a_replica_put_to_each_successor_is_one_message_encoded_once() -> None:
    driver = Driver(FakeNetwork().transport("owner"))  # type: ignore[arg-type]
    sent: list[Call] = []
    encoded: list[bytes] = []

    async def send(call: Call) -> m.Message:
        sent.append(call)
        encoded.append(driver._encode(call.msg))
        return m.Ok()

    batcher = PutBatcher(send)
    put = m.Put(tuple(_entries("k")), replica=True)
    answers = await asyncio.gather(*(batcher.put(NodeRef(f"succ-{i}"), put) for i in range(2)))
    assert all(isinstance(a, m.Ok) for a in answers)
    # Each successor got the owner's own message object, and its bytes were made once.
    assert [c.msg for c in sent] == [put, put] and all(c.msg is put for c in sent)
    assert encoded[0] is encoded[1]
    # A Put merged from two callers is a new message, encoded on its own.
    other = m.Put(tuple(_entries("j")), replica=True)
    await asyncio.gather(batcher.put(NodeRef("succ-0"), put), batcher.put(NodeRef("succ-0"), other))
    assert any(len(c.msg.entries) == 10 for c in sent[2:])  # type: ignore[attr-defined]
