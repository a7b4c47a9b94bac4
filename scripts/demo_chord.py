"""The Chord DHT on the mesh node, end to end on 127.0.0.1 (part of `make demo`).

Five nodes form a ring, keys are set from some nodes and read from others, a
node is killed without a word (its mesh node stopped, no leave), and every
key is still read back once the ring has repaired around it.
"""

from __future__ import annotations

import asyncio
import sys
import time

from peerpool.chord import PROTOCOL, ChordNode
from peerpool.mesh import MeshNode

NODES = 5
KEYS = 50


async def _settle(nodes: list[ChordNode], timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        ring = sorted(nodes, key=lambda n: n.id)
        if all(
            n.next.peer_id == ring[(i + 1) % len(ring)].core.me.peer_id for i, n in enumerate(ring)
        ):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise SystemExit("the ring did not converge")


async def main() -> int:
    meshes, nodes = [], []
    for i in range(NODES):
        mesh = MeshNode(pubsub="none", request_protocols=(PROTOCOL,))
        await mesh.start()
        node = ChordNode(mesh, stabilise_interval=0.2, repair_every=2)
        await node.start()
        if nodes:
            await node.join(meshes[0].listen_addrs[0])
        meshes.append(mesh)
        nodes.append(node)
        print(f"node {i}: {mesh.listen_addrs[0]}")
    print(f"ring of {NODES} closed in {await _settle(nodes):.1f} s")

    for k in range(KEYS):
        await nodes[k % 2].set(f"key-{k}", f"value-{k}")  # written from nodes 0 and 1
    for k in range(KEYS):
        assert await nodes[2 + k % 3].get(f"key-{k}") == f"value-{k}"  # read from 2, 3, 4
    print(f"{KEYS} keys set from nodes 0-1, all read back from nodes 2-4")

    victim = 3
    held = len(nodes[victim].core.store)
    await nodes[victim].stop()
    await meshes[victim].stop()
    print(f"node {victim} killed (held {held} entries)")
    alive = [n for i, n in enumerate(nodes) if i != victim]
    await _settle(alive)
    await asyncio.sleep(1.0)  # a repair round
    started = time.perf_counter()
    for k in range(KEYS):
        assert await alive[k % len(alive)].get(f"key-{k}") == f"value-{k}"
    print(
        f"all {KEYS} keys still read after the kill ({(time.perf_counter() - started) * 1e3 / KEYS:.2f} ms per get)"
    )
    assert await alive[0].get("never-set", default="missing") == "missing"
    print("a missing key is answered as missing")

    for i, (node, mesh) in enumerate(zip(nodes, meshes, strict=True)):
        if i != victim:
            await node.stop()
            await mesh.stop()
    print("chord demo: OK")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
