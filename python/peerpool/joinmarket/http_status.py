"""``/health`` and ``/status`` of a directory over HTTP, on a port of their own.

As joinmarket-ng's directory offers them: ``/health`` for liveness probes
(200 and ``{"status": "ok"}`` while the server listens) and ``/status`` with
peer counts and the relay counters of :class:`ServerStats`. Off by default;
bind it to 127.0.0.1 unless the numbers may be public. Served by aiohttp, a
maintained HTTP server, on the directory's own event loop.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from peerpool.joinmarket.server_state import PeerState

if TYPE_CHECKING:
    from peerpool.joinmarket.server import DirectoryServer


def status_of(server: DirectoryServer, started: float) -> dict[str, Any]:
    core = server.core
    states = {state: 0 for state in PeerState}
    verified = 0
    for conn in core.conns:
        states[conn.state] += 1
        verified += conn.verified
    return {
        "nick": server.nick,
        "network": server.config.network,
        "directory_id": server.directory_id,
        "uptime": round(time.monotonic() - started, 3),
        "peers": {
            "connections": len(core.conns),
            "handshaking": states[PeerState.HANDSHAKE],
            "authenticating": states[PeerState.AUTHENTICATING],
            "ready": states[PeerState.READY],
            "verified": verified,
            "max": server.config.max_peers,
        },
        "queued_output": {
            "bytes": core.output.queued_total,
            "budget": server.config.max_queued_total,
        },
        "counters": dataclasses.asdict(core.stats),
    }


class StatusEndpoint:
    def __init__(self, server: DirectoryServer, host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._started = time.monotonic()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/status", self._status)
        # access_log=None: a probe every few seconds must not write a line each time
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0 and self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])

    async def _health(self, request: web.Request) -> web.Response:
        if not self.server.listening:
            return web.json_response({"status": "stopped"}, status=503)
        return web.json_response({"status": "ok"})

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(status_of(self.server, self._started))

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
