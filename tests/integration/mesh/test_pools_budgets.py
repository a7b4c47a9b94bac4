"""ConnectionPools on a real mesh node, with peers that are our nodes in another process.

Budgets (ten pools of 0.1, a disabled pool, an overflow pool) with a full pool
and the disabled one reported; update()'s added and removed sets; the peers'
process killed and every pool updated; and token / sender checks on real
direct messages, each rejection counted by reason.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from peerpool.mesh import MeshNode, acceptance, tokens
from peerpool.mesh.messages import Msg
from peerpool.mesh.pools import ConnectionPools
from tests.integration.mesh.pools_procs import ChildProc, eventually
from tests.mesh.keys import keypair, mint

pytestmark = pytest.mark.timeout(120)


class Assigned:
    """Routes each peer to the pool the test chose for it."""

    def __init__(self) -> None:
        self.pool_of: dict[str, str] = {}

    def route(self, network: str, peer_id: str, info: dict[str, Any]) -> str | None:
        return self.pool_of.get(peer_id)


async def test_budgets_full_disabled_overflow_and_kill() -> None:
    ratios: dict[str, list[Any]] = {f"p{i}": ["net", 0.1] for i in range(10)}
    ratios["off"] = ["net", 0.0]
    ratios["spill"] = ["net", -1.0]
    policy = Assigned()
    node = MeshNode()
    await node.start()
    peers = ChildProc("peerpool.mesh.proc", {"nodes": 14})
    try:
        # 12 pools need 12 connections at least; floor(0.1 * 12) = 1, the remainder to p9
        pools = ConnectionPools(12, ratios, {"net": node}, policy=policy)
        assert [pools.capacity(f"p{i}") for i in range(10)] == [1] * 9 + [3]
        assert pools.capacity("off") == 0 and pools.capacity("spill") is None
        await peers.start()
        ids = [r["peer_id"] for r in peers.ready]
        plan = [f"p{i}" for i in range(10)] + ["p3", "off", "spill", "spill"]
        policy.pool_of = dict(zip(ids, plan, strict=True))
        for i in range(len(ids)):
            await peers.call("dial", node=i, addrs=node.listen_addrs)

        added: dict[str, set[str]] = {p: set() for p in ratios}
        rejected: dict[str, set[str]] = {p: set() for p in ratios}

        async def settled() -> bool:
            got, _ = await pools.update()
            for p, s in got.items():
                added[p] |= s
            for p, s in pools.get_rejected_after_updating().items():
                rejected[p] |= s
            return sum(map(len, added.values())) + sum(map(len, rejected.values())) == 14

        await eventually(settled)
        assert {p: len(s) for p, s in added.items()} == {
            **{f"p{i}": 1 for i in range(10)},
            "off": 0,
            "spill": 2,
        }
        assert added["p3"] == {ids[3]} and rejected["p3"] == {ids[10]}
        assert rejected["off"] == {ids[11]} and added["spill"] == {ids[12], ids[13]}
        assert pools.stats["pool_full"] == 2
        # the two that fit nowhere were disconnected by us
        await eventually(
            lambda: _async(not node.is_connected(ids[10]) and not node.is_connected(ids[11]))
        )
        assert pools.size() == 12

        peers.kill()  # the whole process dies: its peers leave every pool
        removed: dict[str, set[str]] = {p: set() for p in ratios}

        async def emptied() -> bool:
            _, gone = await pools.update()
            for p, s in gone.items():
                removed[p] |= s
            return pools.size() == 0

        await eventually(emptied)
        assert removed["spill"] == {ids[12], ids[13]} and removed["p0"] == {ids[0]}
        assert not pools._pools.tracked("net") and not pools._last_seen
    finally:
        peers.kill()
        await peers.stop()
        await node.stop()


async def _async(value: bool) -> bool:
    return value


async def test_real_messages_accepted_and_rejected_by_reason() -> None:
    node = MeshNode()
    await node.start()
    peers = ChildProc("peerpool.mesh.proc", {"nodes": 3})
    try:
        pools = ConnectionPools(
            10,
            {"in": ["net", 0.5], "out": ["net", 0.5]},
            {"net": node},
            public_key=keypair("RS256")[1],
            policy=Assigned(),
        )
        pools.policy.pool_of = {}  # type: ignore[union-attr]
        await peers.start()
        a, b, c = (r["peer_id"] for r in peers.ready)
        pools.policy.pool_of = {a: "in", b: "in", c: "in"}  # type: ignore[union-attr]
        for i in range(3):
            await peers.call("dial", node=i, addrs=node.listen_addrs)

        def payload(sender: str, token: str) -> str:
            msg = Msg(sender, content={"n": 1}, piggyback=token + "0", content_type="misc")
            return base64.b64encode(msg.to_bytes()).decode()

        good = mint(peers=[a])
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cases = [
            (0, payload(a, good)),  # accepted
            (0, payload(a, good)),  # accepted, from the cache
            (0, payload(a, mint(peers=[a], ttl=-5))),
            (0, payload(a, mint(peers=[b]))),
            (0, payload(a, mint(peers=[a], ttl=None))),
            (0, payload(a, mint("EdDSA", peers=[a]))),  # another algorithm: malformed here
            (1, payload(a, good)),  # b claims to be a
            (2, payload(c, mint(peers=[c], key=forger))),  # c signs its own token
        ]
        for i, data in cases:
            await peers.call(
                "send", node=i, peer=node.peer_id, channel=f"{a}::dm:x-misc", payload=data
            )
        got: list[Msg] = []

        async def all_in() -> bool:
            got.extend(await pools.get_messages("net"))
            return len(got) + sum(pools.rejections.values()) >= len(cases)

        await eventually(all_in)
        assert [m.sender for m in got] == [a, a] and got[0].content == {"n": 1}
        assert pools.rejections == {
            tokens.EXPIRED: 1,
            tokens.WRONG_PEER: 1,
            tokens.MISSING_EXP: 1,
            tokens.MALFORMED: 1,
            acceptance.SENDER_MISMATCH: 1,
            tokens.FORGED: 1,
        }
        assert pools._verifier is not None and pools._verifier.verifications == 6
        # the spoofer and the forger were disconnected, the peer with stale tokens kept
        await eventually(lambda: _async(not node.is_connected(b) and not node.is_connected(c)))
        assert node.is_connected(a)
    finally:
        await peers.stop()
        await node.stop()
