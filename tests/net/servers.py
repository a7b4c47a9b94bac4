"""Small real TCP servers on 127.0.0.1 for the transport tests, cleaned up completely."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler = echo, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Serve ``handler`` on a free port (yielded); at exit close every connection too.

    asyncio's Server.close() leaves accepted connections and their handler
    tasks running; they are cancelled and awaited here so no socket outlives
    the test.
    """
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
