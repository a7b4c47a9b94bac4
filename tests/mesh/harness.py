"""Our mesh nodes in child processes (``python -m peerpool.mesh.proc``), for tests."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import sys
from typing import Any


class NodeProcessError(Exception):
    """A command the child answered with an error: ``kind`` is the peerpool class name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class NodeProcess:
    """A child process holding one or more MeshNodes."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: list[dict[str, Any]]) -> None:
        self.proc = proc
        self.nodes = ready  # [{"peer_id", "addrs"}] per node
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def spawn(cls, **config: Any) -> NodeProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "peerpool.mesh.proc",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"node process exited before it was ready (rc {await proc.wait()})")
        return cls(proc, json.loads(line)["ready"])

    @property
    def peer_id(self) -> str:
        return self.nodes[0]["peer_id"]

    @property
    def addr(self) -> str:
        return self.nodes[0]["addrs"][0]

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            msg = json.loads(line)
            fut = self._waiting.pop(msg["id"], None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("node process exited"))

    async def call(self, op: str, node: int = 0, *, wait: float = 60.0, **args: Any) -> Any:
        cid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[cid] = fut
        assert self.proc.stdin is not None
        self.proc.stdin.write(
            (json.dumps({"id": cid, "op": op, "node": node, **args}) + "\n").encode()
        )
        await self.proc.stdin.drain()
        msg = await asyncio.wait_for(fut, wait)
        if "error" in msg:
            raise NodeProcessError(msg["error"], msg["message"])
        return msg["ok"]

    async def wait_connected(self, peer_id: str, node: int = 0, timeout: float = 20.0) -> None:
        """Until node `node` has `peer_id` among its peers: the side that was
        dialed learns of the connection a moment after the dialer does."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if any(p["peer_id"] == peer_id for p in await self.call("peers", node=node)):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{peer_id} never connected to node {node}")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(b'{"op": "stop"}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), 20)
            except (ConnectionError, asyncio.TimeoutError):
                self.proc.kill()
                await self.proc.wait()
        await self._reader

    def kill(self) -> None:
        self.proc.kill()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)
