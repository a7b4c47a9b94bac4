"""An in-process stand-in for MeshNode's request/response, for unit tests of the
node's state machine only (the integration tests use the real mesh node)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from peerpool.chord.transport import Handler


@dataclass(frozen=True)
class Info:
    peer_id: str
    direction: str = "outbound"


class FakeNetwork:
    def __init__(self) -> None:
        self.peers: dict[str, FakeTransport] = {}
        self.requests = 0

    def transport(self, peer_id: str) -> FakeTransport:
        t = FakeTransport(self, peer_id)
        self.peers[peer_id] = t
        return t


class FakeTransport:
    def __init__(self, net: FakeNetwork, peer_id: str) -> None:
        self.net = net
        self._peer_id = peer_id
        self.handlers: dict[str, Handler] = {}
        self.dead = False  # refuses at once, like a closed connection
        self.silent = False  # never answers: the requester's timeout must fire
        self.disconnected: list[str] = []
        self.outbound: set[str] = set()  # peers this one "connected to" by asking

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> list[str]:
        return [f"/memory/{self._peer_id}/p2p/{self._peer_id}"]

    def is_connected(self, peer_id: str) -> bool:
        return True

    async def dial(self, addrs: str | Sequence[str], *, timeout: float = 10.0) -> Info:
        addr = addrs if isinstance(addrs, str) else addrs[0]
        peer_id = addr.rsplit("/p2p/", 1)[-1]
        target = self.net.peers.get(peer_id)
        if target is None or target.dead:
            raise ConnectionRefusedError(f"nothing at {addr}")
        if target.silent:
            await asyncio.sleep(timeout)
            raise TimeoutError(f"dial {addr} timed out")
        return Info(peer_id)

    async def request(
        self, peer_id: str, protocol: str, payload: bytes, *, timeout: float = 5.0
    ) -> bytes:
        self.net.requests += 1
        target = self.net.peers.get(peer_id)
        if target is None or target.dead or self.dead:
            raise ConnectionResetError(f"{peer_id} is gone")
        if target.silent:
            await asyncio.sleep(timeout)
            raise TimeoutError(f"{peer_id} did not answer")
        self.outbound.add(peer_id)
        await asyncio.sleep(0)  # a real hop yields to the loop
        return await asyncio.wait_for(target.handlers[protocol](self._peer_id, payload), timeout)

    async def disconnect(self, peer_id: str) -> None:
        self.disconnected.append(peer_id)
        self.outbound.discard(peer_id)

    def peers(self) -> list[Info]:
        return [Info(p, "outbound") for p in sorted(self.outbound)]

    def set_request_handler(self, protocol: str, handler: Handler) -> None:
        self.handlers[protocol] = handler
