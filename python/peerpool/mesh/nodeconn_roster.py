"""NodeConn's side of the rendezvous roster: take it from the world topic, apply it, publish it.

Agents subscribe to ``<world id>::ps:rv`` once the world is set (at the next
``update()``). Topic events on it never reach ``get_messages``: they are
offered to the :class:`~peerpool.mesh.rendezvous.RosterTracker` (only the
world node's, only with a higher ``update_count``; others counted in
``stats["roster_<reason>"]``), and
:meth:`RosterMixin.set_world_agents_and_world_masters_lists_from_rendezvous`
applies the newest one, as the original's method of that name does with what
its Go library kept.

The world node publishes the roster with :meth:`RosterMixin.publish_rendezvous`:
every world agent and master in its pools, with addresses and roles, under an
update count that grows by one per publication.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from peerpool.errors import MeshError
from peerpool.mesh.rendezvous import Roster, RosterTracker, rendezvous_topic
from peerpool.mesh.roles import is_agent_role, is_master_role

if TYPE_CHECKING:
    from collections import Counter

log = logging.getLogger(__name__)


class RosterMixin:
    rendezvous_tag: int
    world_node_peer_id: str | None
    stats: Counter[str]
    p2p_world: Any
    P2P_WORLD: str
    WORLD_AGENTS: frozenset[str]
    WORLD_MASTERS: frozenset[str]

    if TYPE_CHECKING:

        def set_world_agents_list(self, infos: list[dict[str, Any]] | None) -> None: ...
        def set_world_masters_list(self, infos: list[dict[str, Any]] | None) -> None: ...
        def get_all_connected_peer_infos(self, pool_names: Any) -> list[dict[str, Any]]: ...
        def get_role(self, peer_id: str) -> int: ...
        def get_addrs(self, peer_id: str) -> list[str] | None: ...

    def _init_roster(self) -> None:
        self._roster = RosterTracker()
        self.rendezvous_tag = -1
        self._rv_subscribed: str | None = None
        self._rv_published = 0

    def reset_rendezvous_tag(self) -> None:
        """Take the next roster whatever its count (e.g. a world node that restarted)."""
        self.rendezvous_tag = -1
        self._roster.reset()

    async def _on_topic_event(self, p2p_name: str, event: Any) -> bool:
        world = self.world_node_peer_id
        if p2p_name != self.P2P_WORLD or world is None or event.topic != rendezvous_topic(world):
            return False
        outcome = self._roster.offer(event.source, event.data)
        if isinstance(outcome, str):
            self.stats[f"roster_{outcome}"] += 1
            log.info("rendezvous roster from %s ignored (%s)", event.source, outcome)
        else:
            self.stats["roster_accepted"] += 1
        return True

    async def _ensure_rendezvous_subscription(self) -> None:
        world = self.world_node_peer_id
        if world is None or self._rv_subscribed == world or world == self.p2p_world.peer_id:
            return
        try:
            await self.p2p_world.subscribe(rendezvous_topic(world))
        except MeshError as exc:
            log.warning("cannot subscribe to the rendezvous topic of %s: %s", world, exc)
            return
        self._rv_subscribed = world

    async def update(
        self, full: bool | None = None
    ) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        await self._ensure_rendezvous_subscription()
        changes: tuple[dict[str, set[str]], dict[str, set[str]]]
        changes = await super().update(full)  # type: ignore[misc]
        return changes

    async def set_world_agents_and_world_masters_lists_from_rendezvous(self) -> None:
        """Apply the newest accepted roster, if its update count is above the last applied."""
        await self._drain(self.P2P_WORLD)  # type: ignore[attr-defined]
        roster = self._roster.latest
        if roster is None or roster.update_count <= self.rendezvous_tag:
            return
        self.rendezvous_tag = roster.update_count
        agents = [p for p in roster.peers if is_agent_role(p["misc"])]
        masters = [p for p in roster.peers if is_master_role(p["misc"])]
        log.info(
            "rendezvous roster %d: %d agents, %d masters",
            roster.update_count,
            len(agents),
            len(masters),
        )
        self.set_world_agents_list(agents)
        self.set_world_masters_list(masters)

    def build_rendezvous_roster(self) -> Roster:
        """The roster a world node publishes: its world agents and masters with roles and addresses."""
        peers = []
        for info in self.get_all_connected_peer_infos(self.WORLD_AGENTS | self.WORLD_MASTERS):
            peer_id = info["id"]
            addrs = self.get_addrs(peer_id) or info["addrs"]
            peers.append({"id": peer_id, "addrs": list(addrs), "misc": self.get_role(peer_id)})
        self._rv_published += 1
        return Roster(self._rv_published, tuple(sorted(peers, key=lambda p: p["id"])))

    async def publish_rendezvous(self) -> Roster | None:
        """World node: publish the roster on our own rendezvous topic (None if it failed)."""
        roster = self.build_rendezvous_roster()
        try:
            topic = rendezvous_topic(self.p2p_world.peer_id)
            await self._join(self.p2p_world, topic)  # type: ignore[attr-defined]
            await self.p2p_world.publish(topic, roster.to_json())
        except MeshError as exc:
            log.error("cannot publish the rendezvous roster: %s", exc)
            return None
        return roster
