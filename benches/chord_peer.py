"""One DHT node in its own process, for the chord benchmarks and integration tests.

    python -m benches.chord_peer {peerpool,py2p,kademlia} [--bootstrap ADDR]

Prints one JSON line ``{"addr": ...}`` once it listens (and has joined through
``--bootstrap``), then serves until its stdin closes. A peerpool node also
takes commands on stdin, one JSON object a line, and answers each with one
line: ``{"op": "set", "key": k, "value": v}``, ``{"op": "get", "key": k}``,
``{"op": "stats"}``, ``{"op": "held"}`` (the integration tests drive separate processes so). ``addr`` is what the next
node bootstraps from: a multiaddr ending /p2p/<id> for peerpool, host:port for
py2p and kademlia. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from typing import Any


def _announce(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_port(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host, int(port)


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def run_peerpool(bootstrap: str | None, options: dict[str, Any]) -> None:
    from peerpool.chord import PROTOCOL, ChordNode
    from peerpool.mesh import MeshNode

    mesh = MeshNode(pubsub="none", request_protocols=(PROTOCOL,))
    await mesh.start()
    node = ChordNode(mesh, **options)
    await node.start()
    if bootstrap:
        await node.join(bootstrap)
    _announce(addr=mesh.listen_addrs[0], peer_id=mesh.peer_id)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            cmd = json.loads(line)
            try:
                if cmd["op"] == "set":
                    await node.set(cmd["key"], cmd["value"])
                    _announce(ok=True)
                elif cmd["op"] == "get":
                    _announce(
                        ok=True, value=await node.get(cmd["key"], timeout=cmd.get("timeout", 10))
                    )
                elif cmd["op"] == "stats":
                    hops = dict(node.core.hops)
                    if cmd.get("reset"):
                        node.core.hops.clear()
                    _announce(
                        ok=True,
                        hops={str(k): v for k, v in hops.items()},
                        successor=node.next.peer_id,
                        known=len(node.core.routing.known()),
                    )
                elif cmd["op"] == "held":  # what this node stores: (method, position hex)
                    items = [[e.method, f"{e.position:x}"] for e in node.core.store.entries()]
                    _announce(ok=True, items=items)
                else:
                    _announce(ok=False, error=f"unknown op {cmd['op']!r}")
            except Exception as exc:  # reported to the test, which decides
                _announce(ok=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        await node.stop()
        await mesh.stop()


async def run_kademlia(bootstrap: str | None) -> None:
    from kademlia.network import Server

    server = Server()
    port = _free_port()
    await server.listen(port, interface="127.0.0.1")
    if bootstrap:
        await server.bootstrap([_host_port(bootstrap)])
    _announce(addr=f"127.0.0.1:{port}")
    try:
        await _until_stdin_closes()
    finally:
        server.stop()


def run_py2p(bootstrap: str | None) -> None:
    from py2p import chord

    port = _free_port()
    sock = chord.ChordSocket("127.0.0.1", port)
    if bootstrap:
        sock.connect(*_host_port(bootstrap))
        time.sleep(0.5)  # py2p's handshake runs on its daemon thread
    sock.join()
    _announce(addr=f"127.0.0.1:{port}")
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=("peerpool", "py2p", "kademlia"))
    parser.add_argument("--bootstrap")
    parser.add_argument(
        "--options", default="{}", help="peerpool: ChordNode keyword options, as a JSON object"
    )
    args = parser.parse_args()
    if args.system == "py2p":
        run_py2p(args.bootstrap)
    elif args.system == "kademlia":
        asyncio.run(run_kademlia(args.bootstrap))
    else:
        asyncio.run(run_peerpool(args.bootstrap, json.loads(args.options)))


if __name__ == "__main__":
    main()
