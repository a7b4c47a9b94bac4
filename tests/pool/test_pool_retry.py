"""connect_all_with_retry against real servers: concurrent dials, deadline inside a pass."""

from __future__ import annotations

import asyncio
import random

import pytest

from peerpool.errors import DialError, DialTimeoutError, InputError
from peerpool.net import Backoff
from peerpool.pool import ConnectionInfo
from tests.net.ports import closed_port
from tests.pool.conftest import StartServers
from tests.pool.line_client import LineServer
from tests.pool.recording import WAIT, RecordingPool, eventually

FAST = Backoff(initial=0.02, multiplier=2.0, cap=0.2, jitter=0.5)


async def test_ten_servers_three_mute_returns_once_the_seven_are_connected(
    line_servers: StartServers,
) -> None:
    live = await line_servers(7)
    mute = await line_servers(3, mute=True)
    addresses = [s.address for s in [*live[:3], *mute, *live[3:]]]
    # per attempt and overall limits far beyond WAIT: only reaching the target can end the call
    async with RecordingPool(addresses, connect_timeout=600) as pool:
        outcome = await asyncio.wait_for(
            pool.connect_all_with_retry(timeout=600, backoff=FAST, min_connected=7), WAIT
        )
        assert not outcome.deadline_hit
        assert sorted(outcome.connected) == sorted(s.address for s in live)
        assert sorted(outcome.new) == sorted(s.address for s in live)
        # every server was dialed at once, the mute ones included
        assert sorted(e[2] for e in pool.hooks("dialing")) == sorted(addresses)
        # the mute servers' attempts were abandoned and their sockets closed
        await eventually(lambda: all(m.open_connections == 0 for m in mute))
        # each attempt ended in exactly one connected or dial_failed, by connection id
        ended = [e[1] for e in pool.hooks("connected") + pool.hooks("dial_failed")]
        assert sorted(ended) == sorted(e[1] for e in pool.hooks("dialing"))
        assert set(pool.list_disconnected()) == {m.address for m in mute}
        assert set(outcome.errors) <= {m.address for m in mute}


async def test_deadline_is_honoured_in_the_middle_of_an_attempt(line_servers: StartServers) -> None:
    live = await line_servers(7)
    mute = await line_servers(3, mute=True)
    addresses = [s.address for s in [*live, *mute]]
    # attempts would take 600 s; the 0.5 s deadline must cut them (WAIT guards the test)
    async with RecordingPool(addresses, connect_timeout=600) as pool:
        outcome = await asyncio.wait_for(
            pool.connect_all_with_retry(timeout=0.5, backoff=FAST), WAIT
        )
        assert outcome.deadline_hit
        assert sorted(outcome.connected) == sorted(s.address for s in live)
        assert set(pool.list_disconnected()) == {m.address for m in mute}
        assert all(isinstance(outcome.errors[m.address], DialError) for m in mute)
        await eventually(lambda: all(m.open_connections == 0 for m in mute))


async def test_a_server_that_comes_up_late_is_retried_until_it_connects() -> None:
    late = LineServer()
    late.port = closed_port()
    started = asyncio.Event()

    class Pool(RecordingPool):
        async def on_dial_failed(self, conn: ConnectionInfo, error: object) -> None:
            await super().on_dial_failed(conn, error)  # type: ignore[arg-type]
            if len(self.hooks("dial_failed")) == 2 and not started.is_set():
                await late.start()  # the server appears after two refused attempts
                started.set()

    async with Pool([late.address], rng=random.Random(7)) as pool:
        try:
            outcome = await asyncio.wait_for(
                pool.connect_all_with_retry(timeout=600, backoff=FAST), WAIT
            )
        finally:
            await late.kill()
        assert outcome.new == [late.address]
        assert outcome.errors == {}
        assert len(pool.hooks("dial_failed")) == 2
        assert len(pool.hooks("dialing")) == 3


async def test_a_server_that_never_comes_up_gives_up_under_max_attempts() -> None:
    address = f"127.0.0.1:{closed_port()}"
    policy = Backoff(initial=0.01, cap=0.05, max_attempts=4)
    async with RecordingPool([address]) as pool:
        outcome = await asyncio.wait_for(pool.connect_all_with_retry(600, policy), WAIT)
        assert not outcome.deadline_hit  # every worker gave up before the deadline
        assert outcome.connected == []
        assert isinstance(outcome.errors[address], DialError)
        assert len(pool.hooks("dialing")) == 4


async def test_retry_with_everything_connected_returns_at_once(line_servers: StartServers) -> None:
    servers = await line_servers(2)
    async with RecordingPool([s.address for s in servers]) as pool:
        first = await asyncio.wait_for(pool.connect_all_with_retry(timeout=WAIT), WAIT)
        second = await asyncio.wait_for(pool.connect_all_with_retry(timeout=WAIT), WAIT)
        assert len(first.new) == 2
        assert second.new == [] and len(second.connected) == 2
        assert len(pool.hooks("dialing")) == 2


async def test_timeouts_of_single_attempts_are_typed(line_servers: StartServers) -> None:
    (mute,) = await line_servers(1, mute=True)
    async with RecordingPool([mute.address], connect_timeout=0.05) as pool:
        outcome = await asyncio.wait_for(
            pool.connect_all_with_retry(timeout=0.6, backoff=FAST), WAIT
        )
        assert isinstance(outcome.errors[mute.address], DialTimeoutError)
        assert len(pool.hooks("dialing")) >= 2  # it retried after the first timeout


def test_backoff_is_validated() -> None:
    with pytest.raises(InputError):
        Backoff(initial=-1)
