"""Baseline for the directory benchmarks: a stand-in relay we wrote, not joinmarket-ng.

A directory written the straightforward way: streams (``asyncio.start_server``
with its default backlog), one reader task per peer, ``json.loads`` of every
line and a fresh ``json.dumps`` for every recipient, an awaited ``drain``
after each write and a log call per message. It speaks just enough of the
protocol for the load generator. joinmarket-ng itself is not installable
here; its figures, measured in issue 8, are quoted in the README as such.
"""

from __future__ import annotations

import asyncio
import json
import logging

log = logging.getLogger("naive-directory")


class NaiveDirectory:
    def __init__(self, network: str = "regtest") -> None:
        self.network = network
        self.peers: dict[str, asyncio.StreamWriter] = {}
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.peers.values()):
                writer.close()
            await self.server.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, msg_type: int, line: str) -> None:
        writer.write(json.dumps({"type": msg_type, "line": line}).encode() + b"\r\n")
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nick = ""
        try:
            while raw := await reader.readline():
                msg = json.loads(raw)
                msg_type, line = msg["type"], msg["line"]
                log.debug("received %s", msg)
                if msg_type == 793:
                    hs = json.loads(line)
                    ok = hs["network"] == self.network and hs["nick"] not in self.peers
                    nick = hs["nick"]
                    self.peers[nick] = writer
                    answer = {
                        "app-name": "joinmarket",
                        "directory": True,
                        "proto-ver-min": 5,
                        "proto-ver-max": 5,
                        "features": {},
                        "accepted": ok,
                        "nick": "J5naive",
                        "network": self.network,
                        "motd": "",
                    }
                    await self._send(writer, 795, json.dumps(answer))
                elif msg_type == 687:
                    for other, w in list(self.peers.items()):
                        if other != nick:
                            await self._send(w, 687, line)
                elif msg_type == 685:
                    to_nick = line.split("!", 2)[1]
                    target = self.peers.get(to_nick)
                    if target is not None:
                        await self._send(target, 685, line)
        except (ConnectionError, ValueError, KeyError):
            pass
        finally:
            if self.peers.get(nick) is writer:
                del self.peers[nick]
            writer.close()
