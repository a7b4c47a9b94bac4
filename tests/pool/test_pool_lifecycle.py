"""Dead connections leave the pool, reconnects bring them back, close_all survives failures."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from peerpool.errors import DialError
from peerpool.net import Backoff
from peerpool.pool import ConnectionInfo
from tests.pool.conftest import StartServers
from tests.pool.line_client import LineClient
from tests.pool.recording import WAIT, RecordingPool, eventually

FAST = Backoff(initial=0.02, multiplier=2.0, cap=0.2, jitter=0.5)


async def test_killed_server_removes_the_client_and_fires_disconnected(
    line_servers: StartServers,
) -> None:
    a, b = await line_servers(2)
    async with RecordingPool([a.address, b.address]) as pool:
        await asyncio.wait_for(pool.connect_all_parallel(), WAIT)
        conn_id = pool.connections[a.address].id
        await a.kill()
        await pool.wait_until(lambda: bool(pool.hooks("disconnected", a.address)))
        assert list(pool.clients) == [b.address]
        assert pool.list_disconnected() == [a.address]
        (event,) = pool.hooks("disconnected")
        assert event[1] == conn_id
        # the other client is untouched and still works
        assert await asyncio.wait_for(pool.clients[b.address].request("x"), WAIT) == "x"


async def test_reconnect_after_the_server_comes_back(line_servers: StartServers) -> None:
    (server,) = await line_servers(1)
    async with RecordingPool([server.address]) as pool:
        await asyncio.wait_for(pool.connect_one(server.address), WAIT)
        first_id = pool.connections[server.address].id
        await server.kill()
        await pool.wait_until(lambda: not pool.clients)
        down = await asyncio.wait_for(pool.reconnect_disconnected(), WAIT)
        assert down.new == [] and server.address in down.errors
        await server.start()  # same port
        back = await asyncio.wait_for(pool.reconnect_disconnected(), WAIT)
        assert back.new == [server.address]
        assert pool.connections[server.address].id > first_id
        assert await asyncio.wait_for(pool.clients[server.address].request("y"), WAIT) == "y"


async def test_reconnect_task_brings_a_restarted_server_back(line_servers: StartServers) -> None:
    (server,) = await line_servers(1)
    async with RecordingPool([server.address]) as pool:
        await asyncio.wait_for(pool.connect_one(server.address), WAIT)
        task = pool.start_reconnect_task(FAST)
        await server.kill()
        await pool.wait_until(lambda: bool(pool.hooks("disconnected")))
        await pool.wait_until(lambda: len(pool.hooks("dial_failed")) >= 1)  # it is trying
        await server.start()
        await pool.wait_until(lambda: len(pool.hooks("connected")) == 2)
        assert list(pool.clients) == [server.address]
    assert task.done()  # close_all stopped it


ECHO_SERVER = """
import asyncio, sys
async def handle(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


@contextlib.contextmanager
def server_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield proc, port
    finally:
        proc.kill()
        proc.wait(timeout=WAIT)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_sigkilled_server_process_is_noticed() -> None:
    with server_process() as (proc, port):
        address = f"127.0.0.1:{port}"
        async with RecordingPool([address]) as pool:
            await asyncio.wait_for(pool.connect_one(address), WAIT)
            proc.send_signal(signal.SIGKILL)
            await pool.wait_until(lambda: bool(pool.hooks("disconnected")))
            assert pool.clients == {}


class FailingClose(LineClient):
    async def close(self) -> None:
        await super().close()
        raise OSError("close failed (on purpose)")


async def test_close_all_goes_on_after_a_failing_hook_and_a_failing_close(
    line_servers: StartServers,
) -> None:
    servers = await line_servers(4)
    addresses = [s.address for s in servers]

    class Pool(RecordingPool):
        def create_client(self, conn: ConnectionInfo) -> LineClient:
            cls = FailingClose if conn.node_id == addresses[1] else LineClient
            return cls(conn.address)

    pool = Pool(addresses)
    pool.fail_hooks.add(("disconnected", addresses[0]))
    await asyncio.wait_for(pool.connect_all_parallel(), WAIT)
    assert len(pool.clients) == 4
    errors = await asyncio.wait_for(pool.close_all(), WAIT)
    assert sorted(node for node, _ in errors) == sorted(addresses[:2])
    assert pool.clients == {}
    assert sorted(e[2] for e in pool.hooks("disconnected")) == sorted(addresses)
    await eventually(lambda: all(s.open_connections == 0 for s in servers))


async def test_close_all_abandons_dials_in_flight(line_servers: StartServers) -> None:
    (mute,) = await line_servers(1, mute=True)
    pool = RecordingPool([mute.address], connect_timeout=600)
    attempt = asyncio.create_task(pool.connect_one(mute.address))
    await eventually(lambda: mute.open_connections == 1)
    assert await asyncio.wait_for(pool.close_all(), WAIT) == []
    with pytest.raises(DialError, match="abandoned"):
        await asyncio.wait_for(attempt, WAIT)
    assert pool.clients == {}
    assert len(pool.hooks("connected")) == 0
    (failed,) = pool.hooks("dial_failed")
    assert failed[1] == pool.hooks("dialing")[0][1]
    assert "abandoned" in str(failed[3])
    await eventually(lambda: mute.open_connections == 0)


async def test_disconnect_one_node_fires_the_hook_once(line_servers: StartServers) -> None:
    servers = await line_servers(2)
    async with RecordingPool([s.address for s in servers]) as pool:
        await asyncio.wait_for(pool.connect_all_parallel(), WAIT)
        await pool.disconnect(servers[0].address)
        assert list(pool.clients) == [servers[1].address]
        await asyncio.sleep(0.05)  # let a (wrong) second notification from the watcher show up
        assert len(pool.hooks("disconnected", servers[0].address)) == 1
        await eventually(lambda: servers[0].open_connections == 0)
