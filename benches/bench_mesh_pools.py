"""Mesh pools: update() over 10,000 tracked peers, and token checks under one token.

``mesh.pools_update_10k``: a NodeConn (world node) tracking 10,000 world
agents on a P2P double (its live view is a list of PeerInfo objects kept
between calls), with 5 peers leaving and 5 joining (as events) before each
call, outside the timing. Ours twice: as called by default (the events, a
full reconcile at most once a second) and with a full reconcile on every call
(``test_full_10k``), which routes only new or changed peers. The baseline
is a full reconcile the way the system being replaced does it on every
cycle: every connected peer's info dict is routed again by the world sets,
then each pool's set is diffed against the routed ids and the new ones are
added (``full_reconcile_baseline``). Target: ours under 10 ms.

``mesh.token_stream_rs256``: 1,000 messages from one peer under one RS256
(RSA-2048) token. Ours: TokenVerifier (one signature check, then the per-peer
cache); the baseline verifies the signature of every message, as the reference
does (PyJWT decode with the same options and claim checks). Target: >= 20x.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from peerpool.mesh.nodeconn import NodeConn
from peerpool.mesh.pools import peer_info_dict
from peerpool.mesh.tokens import TokenVerifier
from tests.mesh.fake_p2p import FakeP2P, fake_peer_id
from tests.mesh.keys import keypair, mint

PEERS = 10_000
CHURN = 5
MESSAGES = 1_000


class World:
    """A world node's NodeConn with PEERS world agents connected (half in, half out)."""

    def __init__(self) -> None:
        self.pu, self.pw = FakeP2P(), FakeP2P()
        self.conn = NodeConn(4 * PEERS, self.pu, self.pw, True, keypair("EdDSA")[1], "")
        self.ids: list[str] = []
        for i in range(PEERS):
            self._join("inbound" if i % 2 else "outbound")
        self.pw.events.clear()

    def _join(self, direction: str) -> None:
        pid = fake_peer_id()
        self.conn.world_agents_list.add(pid)
        self.pw.connect_peer(pid, direction=direction)
        self.ids.append(pid)

    def churn(self) -> None:
        for pid in self.ids[:CHURN]:
            self.pw.drop_peer(pid)
            self.conn.world_agents_list.discard(pid)
        del self.ids[:CHURN]
        for _ in range(CHURN):
            self._join("inbound")


def full_reconcile_baseline(conn: NodeConn, members: dict[str, set[str]], p2p: FakeP2P) -> None:
    """Route every connected peer again and diff each pool's set (the original's update cycle)."""
    infos = [peer_info_dict(i, 0) for i in p2p.peers()]
    routed: dict[str, dict[str, Any]] = {p: {} for p in NodeConn.WORLD}
    for c in infos:
        pid = c["id"]
        inbound = c["direction"] == "incoming"
        if pid in conn.world_agents_list:
            pool = NodeConn.IN_WORLD_AGENTS if inbound else NodeConn.OUT_WORLD_AGENTS
        elif pid == conn.world_node_peer_id:
            pool = NodeConn.IN_WORLD_NODE if inbound else NodeConn.OUT_WORLD_NODE
        elif pid in conn.world_masters_list:
            pool = NodeConn.IN_WORLD_MASTERS if inbound else NodeConn.OUT_WORLD_MASTERS
        else:
            continue
        routed[pool][pid] = c
    for pool, peers in routed.items():
        have = members[pool]
        cap = conn.capacity(pool)
        for pid in have - peers.keys():
            have.discard(pid)
        for pid in peers.keys() - have:
            if cap is not None and len(have) >= cap:
                break
            have.add(pid)


def _bench_update(benchmark: Any, full: bool | None) -> None:
    world = World()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(world.conn.update(full=True))
        assert world.conn.size() == PEERS
        benchmark.extra_info["items"] = PEERS
        benchmark.pedantic(
            lambda: loop.run_until_complete(world.conn.update(full)),
            setup=world.churn,
            rounds=30,
            iterations=1,
        )
        assert world.conn.size() == PEERS
        added = world.conn.get_added_after_updating()
        assert sum(len(s) for s in added.values()) == CHURN
    finally:
        loop.close()


@pytest.mark.benchmark(group="mesh.pools_update_10k")
def test_events_10k(benchmark: Any) -> None:
    """As an agent loop calls it: the events, and a full reconcile at most once a second."""
    _bench_update(benchmark, None)


@pytest.mark.benchmark(group="mesh.pools_update_10k")
def test_full_10k(benchmark: Any) -> None:
    """Every call compares all 10,000 live peers with the pools."""
    _bench_update(benchmark, True)


@pytest.mark.benchmark(group="mesh.pools_update_10k")
def test_update_10k_full_reconcile_baseline(benchmark: Any) -> None:
    world = World()
    members: dict[str, set[str]] = {p: set() for p in NodeConn.WORLD}
    full_reconcile_baseline(world.conn, members, world.pw)
    assert sum(len(m) for m in members.values()) == PEERS
    benchmark.extra_info["items"] = PEERS
    benchmark.pedantic(
        lambda: full_reconcile_baseline(world.conn, members, world.pw),
        setup=world.churn,
        rounds=30,
        iterations=1,
    )
    assert sum(len(m) for m in members.values()) == PEERS


PEER = "12D3KooWbenchpeer"


@pytest.mark.benchmark(group="mesh.token_stream_rs256")
def test_token_stream_cached(benchmark: Any) -> None:
    verifier = TokenVerifier(keypair("RS256")[1])
    token = mint("RS256", peers=[PEER])

    def stream() -> None:
        verifier.forget(PEER)  # each call starts cold: one full check, then the cache
        for _ in range(MESSAGES):
            verifier.verify(token, PEER)

    benchmark.extra_info["items"] = MESSAGES
    benchmark(stream)
    assert verifier.verify(token, PEER).node_id == "node-1"


@pytest.mark.benchmark(group="mesh.token_stream_rs256")
def test_token_every_message_baseline(benchmark: Any) -> None:
    public = keypair("RS256")[1]
    token = mint("RS256", peers=[PEER])

    def stream() -> None:
        for _ in range(MESSAGES):
            payload = jwt.decode(token, public, algorithms=["RS256"], options={"require": ["exp"]})
            if PEER not in payload["p2p_peers"]:
                raise AssertionError("bound to other peers")

    benchmark.extra_info["items"] = MESSAGES
    benchmark(stream)
