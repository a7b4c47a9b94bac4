"""ClientPool.connect_all_with_retry over 10 servers of which 3 never answer the handshake.

The three "dead" servers accept TCP and then stay silent, the way a hung
directory behind Tor does. The baseline does what joinmarket-ng's
``DirectoryClientPool.connect_all_with_retry`` does: a sequential pass over
the servers, each attempt bounded by its own timeout, the deadline looked at
only between passes, returning after a pass in which something connected. So
it pays the dead-server timeout three times in turn. Ours dials all ten at
once and returns when its target is met (``min_connected=7``), or, with no
target, at its deadline even in the middle of attempts (``_deadline``).

The servers run on their own event loop in a thread, so only the client side
is measured. Every round builds a new pool and closes it, in both variants.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from peerpool.errors import PeerpoolError
from peerpool.net import parse_address
from peerpool.pool import ClientPool
from tests.pool.line_client import LineClient, LineServer

LIVE, DEAD = 7, 3
# the per-attempt timeout a dead server costs (joinmarket-ng's default is 120 s;
# a small value keeps the baseline's rounds short, the ratio grows with it)
ATTEMPT_TIMEOUT = 0.5
DEADLINE = 30.0  # overall; never reached when the target is met
ROUNDS = 3


class ServerThread:
    """Line servers (7 answering, 3 silent) on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[LineServer] = self._call(self._start())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self) -> list[LineServer]:
        live = [await LineServer().start() for _ in range(LIVE)]
        dead = [await LineServer(mute=True).start() for _ in range(DEAD)]
        # dead ones spread through the list, as they would be in a config file
        return [live[0], dead[0], live[1], live[2], dead[1], live[3], live[4], dead[2], *live[5:]]

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self.servers]

    def stop(self) -> None:
        async def kill_all() -> None:
            for server in self.servers:
                await server.kill()

        self._call(kill_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerThread]:
    thread = ServerThread()
    yield thread
    thread.stop()


async def ours(addresses: list[str], min_connected: int | None, timeout: float) -> int:
    pool = ClientPool(addresses, client_factory=LineClient, connect_timeout=ATTEMPT_TIMEOUT)
    async with pool:
        outcome = await pool.connect_all_with_retry(timeout=timeout, min_connected=min_connected)
        return len(outcome.connected)


async def sequential_baseline(addresses: list[str]) -> int:
    """A pass at a time, one server at a time, the deadline checked between passes."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    clients: dict[str, LineClient] = {}
    delay = 1.0
    try:
        while True:
            for address in addresses:
                if address in clients:
                    continue
                client = LineClient(parse_address(address))
                try:
                    await asyncio.wait_for(client.connect(), ATTEMPT_TIMEOUT)
                except (PeerpoolError, OSError, asyncio.TimeoutError):
                    await client.close()
                    continue
                clients[address] = client
            remaining = DEADLINE - (loop.time() - started)
            if clients or remaining <= 0:
                return len(clients)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 30.0)
    finally:
        for client in clients.values():
            await client.close()


def _figure(benchmark: Any, connected: int, variant: str) -> None:
    assert connected == LIVE
    benchmark.extra_info["figure"] = (
        f"{variant}: {connected}/{LIVE + DEAD} connected, {DEAD} silent, "
        f"attempt timeout {ATTEMPT_TIMEOUT} s"
    )


@pytest.mark.benchmark(group="pool.connect_retry_10_of_which_3_dead")
def test_connect_retry_until_target(benchmark: Any, servers: ServerThread) -> None:
    run = lambda: asyncio.run(ours(servers.addresses, LIVE, DEADLINE))  # noqa: E731
    _figure(benchmark, benchmark.pedantic(run, rounds=ROUNDS, iterations=1), "min_connected=7")


@pytest.mark.benchmark(group="pool.connect_retry_10_of_which_3_dead")
def test_connect_retry_until_deadline(benchmark: Any, servers: ServerThread) -> None:
    # no target: returns at its deadline (one attempt timeout), dead dials cut mid-attempt
    run = lambda: asyncio.run(ours(servers.addresses, None, ATTEMPT_TIMEOUT))  # noqa: E731
    _figure(benchmark, benchmark.pedantic(run, rounds=ROUNDS, iterations=1), "no target")


@pytest.mark.benchmark(group="pool.connect_retry_10_of_which_3_dead")
def test_connect_retry_baseline(benchmark: Any, servers: ServerThread) -> None:
    run = lambda: asyncio.run(sequential_baseline(servers.addresses))  # noqa: E731
    _figure(benchmark, benchmark.pedantic(run, rounds=ROUNDS, iterations=1), "sequential")
