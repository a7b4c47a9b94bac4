"""A ClientPool of LineClients that records every lifecycle hook, for the pool tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from peerpool.errors import PeerpoolError
from peerpool.net import Address
from peerpool.pool import ClientPool, ConnectionInfo
from tests.pool.line_client import LineClient

WAIT = 20.0  # generous: a loaded CI machine must still pass; nothing waits this long normally


class RecordingPool(ClientPool[LineClient]):
    """Every hook appends ``(hook name, connection id, node id, extra)`` to ``events``."""

    def __init__(self, addresses: Iterable[str | Address], **kwargs: Any) -> None:
        kwargs.setdefault("client_factory", LineClient)
        super().__init__(addresses, **kwargs)
        self.events: list[tuple[str, int, str, Any]] = []
        self._event_added = asyncio.Condition()
        self.fail_hooks: set[tuple[str, str]] = set()  # (hook, node id) pairs that raise

    async def _record(self, hook: str, conn: ConnectionInfo, extra: Any = None) -> None:
        self.events.append((hook, conn.id, conn.node_id, extra))
        async with self._event_added:
            self._event_added.notify_all()
        if (hook, conn.node_id) in self.fail_hooks:
            raise RuntimeError(f"hook {hook} fails for {conn.node_id} (on purpose)")

    async def on_dialing(self, conn: ConnectionInfo) -> None:
        await self._record("dialing", conn)

    async def on_dial_failed(self, conn: ConnectionInfo, error: PeerpoolError) -> None:
        await self._record("dial_failed", conn, error)

    async def on_connected(self, conn: ConnectionInfo, client: LineClient) -> None:
        await self._record("connected", conn, client)

    async def on_disconnected(
        self, conn: ConnectionInfo, client: LineClient, cause: BaseException | None
    ) -> None:
        await self._record("disconnected", conn, cause)

    def hooks(self, hook: str, node: str | None = None) -> list[tuple[str, int, str, Any]]:
        return [e for e in self.events if e[0] == hook and (node is None or e[2] == node)]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        async def until() -> None:
            async with self._event_added:
                await self._event_added.wait_for(predicate)

        await asyncio.wait_for(until(), timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition that no hook announces (e.g. a server seeing a connection close)."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)

