"""Line servers on 127.0.0.1 for the pool tests, killed at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.pool.line_client import LineServer

StartServers = Callable[..., Awaitable[list[LineServer]]]


@pytest.fixture
async def line_servers() -> AsyncIterator[StartServers]:
    started: list[LineServer] = []

    async def start(count: int, *, mute: bool = False) -> list[LineServer]:
        servers = [await LineServer(mute=mute).start() for _ in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        await server.kill()
