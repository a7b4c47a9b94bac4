"""Drive a JSON-lines peer process (pylibp2p_peer.py, or our node's mesh_peer.py) from asyncio.

The process prints one ``{"event": "ready", ...}`` line, then answers each command line
``{"id": n, "cmd": ...}`` with ``{"reply": n, "ok": ...}``; every other line is an event,
queued for ``next_event``. Used by the interop tests and by benches/bench_mesh.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYLIBP2P_PEER = HERE / "pylibp2p_peer.py"
# py-libp2p imports for ~1.5 s of CPU; on a loaded 2-core machine much longer
READY_TIMEOUT = 120.0
REPLY_TIMEOUT = 60.0


class PeerProcessError(RuntimeError):
    """The peer process answered a command with an error, or died."""


class JsonLineProcess:
    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc = proc
        self.ready = ready
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, argv: Sequence[str], *, prefix: Sequence[str] = ()) -> JsonLineProcess:
        """Start ``prefix + argv`` (prefix: e.g. ``ip netns exec NS``) and wait until ready."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = await asyncio.create_subprocess_exec(
            *prefix,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # stderr passes through to pytest's capture: a peer's traceback shows on failure
            env=env,
            limit=64 * 1024 * 1024,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            raise PeerProcessError(f"{argv} not ready after {READY_TIMEOUT} s") from None
        if not line:
            await proc.wait()
            raise PeerProcessError(f"{argv} exited with {proc.returncode} before ready")
        ready = json.loads(line)
        if ready.get("event") != "ready":
            proc.kill()
            raise PeerProcessError(f"first line is not ready: {ready}")
        return cls(proc, ready)

    @classmethod
    async def pylibp2p(cls, *args: str, prefix: Sequence[str] = ()) -> JsonLineProcess:
        return await cls.start([sys.executable, str(PYLIBP2P_PEER), *args], prefix=prefix)

    def host(self, i: int = 0) -> dict[str, Any]:
        host: dict[str, Any] = self.ready["hosts"][i]
        return host

    @property
    def peer_id(self) -> str:
        return str(self.host()["peer_id"])

    @property
    def addr(self) -> str:
        return str(self.host()["addrs"][0])

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            msg = json.loads(line)
            rid = msg.get("reply")
            if rid is not None and rid in self._replies:
                fut = self._replies.pop(rid)
                if not fut.done():
                    fut.set_result(msg)
            else:
                self.events.put_nowait(msg)
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(PeerProcessError(f"peer exited ({self.proc.returncode})"))

    async def call(self, cmd: str, *, timeout: float = REPLY_TIMEOUT, **kw: Any) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": rid, "cmd": cmd, **kw}) + "\n").encode())
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(fut, timeout)
        if not reply.get("ok"):
            raise PeerProcessError(f"{cmd}: {reply.get('error')}\n{reply.get('trace', '')}")
        return reply

    async def next_event(self, kind: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """The next event of this kind whose fields equal ``match``; others stay queued."""
        skipped: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    ev = await self.events.get()
                    if ev.get("event") == kind and all(ev.get(k) == v for k, v in match.items()):
                        return ev
                    skipped.append(ev)
        finally:
            for ev in skipped:
                self.events.put_nowait(ev)

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.call("stop", timeout=10)
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)
