"""ClientPool connecting real line servers on 127.0.0.1: connect_one, parallel, hooks, ids."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.errors import DialError, DialTimeoutError, PoolError
from peerpool.pool import ConnectionInfo
from tests.net.ports import closed_port
from tests.pool.conftest import StartServers
from tests.pool.line_client import LineClient
from tests.pool.recording import WAIT, RecordingPool, eventually


async def test_connect_one_lists_the_client_and_fires_hooks_with_one_id(
    line_servers: StartServers,
) -> None:
    (server,) = await line_servers(1)
    async with RecordingPool([server.address]) as pool:
        client = await asyncio.wait_for(pool.connect_one(server.address), WAIT)
        assert pool.clients == {server.address: client}
        assert await asyncio.wait_for(client.request("ping"), WAIT) == "ping"
        (dialing,) = pool.hooks("dialing")
        (connected,) = pool.hooks("connected")
        assert dialing[1] == connected[1] == pool.connections[server.address].id
        assert connected[3] is client
        # already connected: the same client, no new attempt
        assert await pool.connect_one(server.address) is client
        assert len(pool.hooks("dialing")) == 1


async def test_refused_dial_is_a_dial_error_and_fires_dial_failed() -> None:
    address = f"127.0.0.1:{closed_port()}"
    async with RecordingPool([address]) as pool:
        with pytest.raises(DialError, match="refused"):
            await asyncio.wait_for(pool.connect_one(address), WAIT)
        assert pool.clients == {}
        (dialing,) = pool.hooks("dialing")
        (failed,) = pool.hooks("dial_failed")
        assert failed[1] == dialing[1]
        assert isinstance(failed[3], DialError)


async def test_a_silent_server_times_out_as_dial_timeout(line_servers: StartServers) -> None:
    (mute,) = await line_servers(1, mute=True)
    async with RecordingPool([mute.address], connect_timeout=0.3) as pool:
        with pytest.raises(DialTimeoutError):
            await asyncio.wait_for(pool.connect_one(mute.address), WAIT)
        # the abandoned client was closed: the server sees its connection end
        await eventually(lambda: mute.open_connections == 0)
        assert mute.accepted == 1


async def test_each_attempt_gets_a_new_connection_id() -> None:
    address = f"127.0.0.1:{closed_port()}"
    async with RecordingPool([address]) as pool:
        for _ in range(3):
            with pytest.raises(DialError):
                await asyncio.wait_for(pool.connect_one(address), WAIT)
        ids = [event[1] for event in pool.hooks("dialing")]
        assert len(ids) == 3
        assert len(set(ids)) == 3


async def test_concurrent_connects_to_one_node_share_one_attempt(
    line_servers: StartServers,
) -> None:
    (server,) = await line_servers(1)
    async with RecordingPool([server.address]) as pool:
        clients = await asyncio.wait_for(
            asyncio.gather(*(pool.connect_one(server.address) for _ in range(5))), WAIT
        )
        assert all(c is clients[0] for c in clients)
        assert len(pool.hooks("dialing")) == 1
        assert server.accepted == 1


async def test_connect_all_parallel_reports_new_and_failed(line_servers: StartServers) -> None:
    live = await line_servers(3)
    dead = f"127.0.0.1:{closed_port()}"
    addresses = [s.address for s in live] + [dead]
    async with RecordingPool(addresses) as pool:
        outcome = await asyncio.wait_for(pool.connect_all_parallel(), WAIT)
        assert sorted(outcome.new) == sorted(s.address for s in live)
        assert sorted(outcome.connected) == sorted(s.address for s in live)
        assert list(outcome.errors) == [dead]
        assert isinstance(outcome.errors[dead], DialError)
        assert pool.list_disconnected() == [dead]
        # a second pass only dials what is missing
        again = await asyncio.wait_for(pool.connect_all_parallel(), WAIT)
        assert again.new == []
        assert len(pool.hooks("dialing")) == 5


class BuggyClient(LineClient):
    async def connect(self) -> None:
        raise TypeError("a bug in the client")


async def test_a_client_bug_during_connect_becomes_a_dial_error(line_servers: StartServers) -> None:
    (server,) = await line_servers(1)
    async with RecordingPool([server.address], client_factory=BuggyClient) as pool:
        with pytest.raises(DialError, match="TypeError") as info:
            await asyncio.wait_for(pool.connect_one(server.address), WAIT)
        assert isinstance(info.value.__cause__, TypeError)
        assert pool.clients == {}


async def test_client_kwargs_hook_feeds_the_constructor(line_servers: StartServers) -> None:
    (server,) = await line_servers(1)
    seen: list[ConnectionInfo] = []

    class Pool(RecordingPool):
        def client_kwargs(self, conn: ConnectionInfo) -> dict[str, object]:
            seen.append(conn)
            return {"address": conn.address, "proxy": None}

    async with Pool([server.address]) as pool:
        await asyncio.wait_for(pool.connect_one(server.address), WAIT)
        assert [c.node_id for c in seen] == [server.address]
        assert seen[0].id == pool.connections[server.address].id


async def test_closed_pool_refuses_new_connections(line_servers: StartServers) -> None:
    (server,) = await line_servers(1)
    pool = RecordingPool([server.address])
    await pool.close_all()
    with pytest.raises(PoolError, match="closed"):
        await pool.connect_one(server.address)
    assert server.accepted == 0

