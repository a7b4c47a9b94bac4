"""Orderbook figure: 1,000 offers from 3 directories, collected and deduplicated.

100 makers with 10 offers each sit on all 3 directories (in a separate process,
``jm_orderbook_makers.py``) and answer through every one of them, so the taker
receives 3,000 signed offer lines for 1,000 distinct (counterparty, oid). The
timed call is from sending ``!orderbook`` through all directories until the
MultiDirectoryClient holds all 1,000 verified, deduplicated offers; that bounds
the time it needs after the last offer arrives (target: < 1 s). Baseline: none
that means anything here (the peer library cannot be run in this process), so
the group reports our figure alone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benches.loop_thread import LoopThread
from peerpool.joinmarket import MultiDirectoryClient
from peerpool.joinmarket.client import OfferCollector
from peerpool.joinmarket.offers import ORDERBOOK

MAKERS = Path(__file__).with_name("jm_orderbook_makers.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


async def _collect(taker: MultiDirectoryClient, expected: int) -> tuple[int, int]:
    collector = OfferCollector()
    copies = 0

    def count(client: Any, message: Any) -> None:
        nonlocal copies
        copies += 1
        collector.on_message(client, message)
        if len(collector.offers) >= expected:
            done.set()

    done = asyncio.Event()
    taker.listeners.append(count)
    try:
        await taker.send_public_all(ORDERBOOK)
        await asyncio.wait_for(done.wait(), 60)
    finally:
        taker.listeners.remove(count)
    return len(collector.offers), copies


@pytest.mark.benchmark(group="jm.taker.orderbook_1000_offers_3_directories")
def test_orderbook_1000_offers_3_directories(benchmark: Any, loop_thread: LoopThread) -> None:
    makers, offers = (20, 5) if benchmark.disabled else (100, 10)
    expected = makers * offers
    proc = subprocess.Popen(
        [sys.executable, str(MAKERS), "--makers", str(makers), "--offers", str(offers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stdin is not None
    taker: MultiDirectoryClient | None = None
    try:
        addresses = json.loads(proc.stdout.readline())
        taker = MultiDirectoryClient(addresses, "regtest")
        outcome = loop_thread.run(taker.connect_all_parallel(timeout=30))
        assert len(outcome.connected) == 3, outcome.errors
        results: list[tuple[int, int]] = []

        def collect() -> None:
            assert taker is not None
            results.append(loop_thread.run(_collect(taker, expected)))

        rounds = 1 if benchmark.disabled else 5
        benchmark.pedantic(collect, rounds=rounds, iterations=1)
        unique, copies = results[-1]
        assert unique == expected and copies >= makers
        benchmark.extra_info["items"] = expected
        benchmark.extra_info["figure"] = (
            f"{expected} offers from {makers} makers ({copies} signed messages via 3 directories)"
        )
    finally:
        if taker is not None:
            loop_thread.run(taker.close_all())
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
