"""A py-libp2p peer in its own process, driven by JSON lines: the third-party side of
the mesh interop tests and the py-libp2p baseline of the mesh benchmarks.

    python pylibp2p_peer.py [--key FILE] [--hosts N] [--listen MADDR] [--pubsub gossipsub]

It starts N hosts (TCP, Noise, yamux; nothing else: no mDNS, UPnP, bootstrap, and no
plaintext/secio/TLS fallback) and prints one line
``{"event": "ready", "hosts": [{"peer_id": ..., "addrs": [...]}, ...]}``.
Then each stdin line is a command ``{"id": 7, "cmd": "dial", "host": 0, ...}``
answered by ``{"reply": 7, "ok": true, ...}`` or ``{"reply": 7, "ok": false,
"error": "..."}``; what arrives is reported as ``{"event": "dm" | "topic" | ...}`` lines
(or only counted, after ``{"cmd": "report", "mode": "count"}``, for benchmarks).
Commands are in ``pylibp2p_host.PeerHost.handle``. Bytes travel as base64.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any

import trio

# runnable both as a script and as a module of the tests package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pylibp2p_host import PeerHost, emit, load_key_pair, open_hosts


async def _command_loop(hosts: list[PeerHost], nursery: trio.Nursery) -> None:
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buf = b""
    while True:
        chunk = await stdin.receive_some(1 << 16)
        if not chunk:
            return  # the driver went away: stop everything
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
            except ValueError as exc:
                emit({"event": "error", "error": f"bad command line: {exc}"})
                continue
            if cmd.get("cmd") == "stop":
                emit({"reply": cmd.get("id"), "ok": True})
                return
            # each command in its own task, so a long send_many does not block a wait
            nursery.start_soon(_run_command, hosts, cmd)


async def _run_command(hosts: list[PeerHost], cmd: dict[str, Any]) -> None:
    rid = cmd.get("id")
    try:
        host = hosts[int(cmd.get("host", 0))]
        result = await host.handle(cmd)
        emit({"reply": rid, "ok": True, **(result or {})})
    except Exception as exc:  # reported to the driver, never a dead process
        emit(
            {
                "reply": rid,
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3),
            }
        )


async def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", help="libp2p protobuf private key file (first host only)")
    ap.add_argument("--hosts", type=int, default=1)
    ap.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    ap.add_argument("--pubsub", choices=["gossipsub", "floodsub", "none"], default="gossipsub")
    ap.add_argument("--muxer", choices=["yamux", "mplex"], default="yamux")
    ap.add_argument("--degree", type=int, default=6, help="gossipsub D (benches raise it)")
    ap.add_argument(
        "--gossip-protocols",
        default="/meshsub/1.2.0,/meshsub/1.1.0,/meshsub/1.0.0",
        help="gossipsub protocol ids offered, best first",
    )
    ap.add_argument(
        "--rate-limit",
        type=float,
        default=10.0,  # py-libp2p 0.8's own default; the benches pass 0
        help="py-libp2p's per-peer per-topic forward limit (msgs/s); 0 turns it off",
    )
    args = ap.parse_args(argv)
    first_key = load_key_pair(args.key) if args.key else None
    async with open_hosts(args, first_key) as hosts, trio.open_nursery() as nursery:
        emit({"event": "ready", "hosts": [h.describe() for h in hosts]})
        await _command_loop(hosts, nursery)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
