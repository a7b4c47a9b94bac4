"""NodeConn: the pools of an agent of the agent networks, by role.

Two networks: the public one (``p2p_u``) and the private world (``p2p_w``),
with in/out pools for public peers, world agents, the world node and world
masters. Ratios, as documented for the system being replaced:

- a regular agent: public 25% (in and out equally), world agents 75%, world
  masters disabled (0). Its world-node pools are an overflow (-1) and not
  disabled: under the documented rule a 0 pool has capacity 0, so an agent
  would drop its own world node (the original only worked because its code
  gives a 0 pool one slot). Only the one world-node id routes there, so the
  overflow holds at most one peer per direction.
- a world node: public 25%, world agents 50%, world masters 25%, world-node
  pools unlimited (-1).

World peers are routed by the world agents, world masters, world node and
inspector sets (:class:`~peerpool.mesh.roles.WorldRouting`); anyone else is
disconnected. The world agents and masters lists come from the world node's
rendezvous roster (:mod:`peerpool.mesh.rendezvous`) or are set directly; when
they change, every world peer is routed again at the next ``update()``.
Roles and roster addresses are kept for listed peers (a reconnect finds
them) and dropped for anyone else once they are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import Any

from peerpool.errors import RoleError
from peerpool.mesh.messages import Msg
from peerpool.mesh.nodeconn_roster import RosterMixin
from peerpool.mesh.pools import ConnectionPools, PeerInfoDict
from peerpool.mesh.roles import (
    ROLE_WORLD,
    RoleBook,
    WorldRouting,
    check_role,
    is_master_role,
)

log = logging.getLogger(__name__)


def _names(pool_names: str | Collection[str] | None, default: Iterable[str]) -> list[str]:
    if pool_names is None:
        return list(default)
    if isinstance(pool_names, str):
        return [pool_names]
    return list(pool_names)


class NodeConn(RosterMixin, ConnectionPools):
    P2P_PUBLIC = "p2p_public"
    P2P_WORLD = "p2p_world"

    IN_PUBLIC = "in_all_universe_public"
    OUT_PUBLIC = "out_all_universe_public"
    IN_WORLD_AGENTS = "in_world_agents_private"
    OUT_WORLD_AGENTS = "out_world_agents_private"
    IN_WORLD_NODE = "in_world_node_private"
    OUT_WORLD_NODE = "out_world_node_private"
    IN_WORLD_MASTERS = "in_world_masters_private"
    OUT_WORLD_MASTERS = "out_world_masters_private"

    PUBLIC = frozenset({IN_PUBLIC, OUT_PUBLIC})
    WORLD_NODE = frozenset({IN_WORLD_NODE, OUT_WORLD_NODE})
    WORLD_AGENTS = frozenset({IN_WORLD_AGENTS, OUT_WORLD_AGENTS})
    WORLD_MASTERS = frozenset({IN_WORLD_MASTERS, OUT_WORLD_MASTERS})
    WORLD = WORLD_NODE | WORLD_AGENTS | WORLD_MASTERS
    ALL = PUBLIC | WORLD
    OUTGOING = frozenset({OUT_PUBLIC, OUT_WORLD_NODE, OUT_WORLD_AGENTS, OUT_WORLD_MASTERS})
    INCOMING = frozenset({IN_PUBLIC, IN_WORLD_NODE, IN_WORLD_AGENTS, IN_WORLD_MASTERS})

    def __init__(
        self,
        max_connections: int,
        p2p_u: Any,
        p2p_w: Any,
        is_world_node: bool,
        public_key: str | bytes | None,
        token: str | None,
        **kwargs: Any,
    ) -> None:
        agents, masters = (0.5, 0.25) if is_world_node else (0.75, 0.0)
        ratios = {
            self.IN_PUBLIC: (self.P2P_PUBLIC, 0.125),
            self.OUT_PUBLIC: (self.P2P_PUBLIC, 0.125),
            self.IN_WORLD_AGENTS: (self.P2P_WORLD, agents / 2),
            self.OUT_WORLD_AGENTS: (self.P2P_WORLD, agents / 2),
            self.IN_WORLD_NODE: (self.P2P_WORLD, -1.0),
            self.OUT_WORLD_NODE: (self.P2P_WORLD, -1.0),
            self.IN_WORLD_MASTERS: (self.P2P_WORLD, masters / 2),
            self.OUT_WORLD_MASTERS: (self.P2P_WORLD, masters / 2),
        }
        self.world_agents_list: set[str] = set()
        self.world_masters_list: set[str] = set()
        self.world_agents_and_world_masters_list: set[str] = set()
        self.world_node_peer_id: str | None = None
        self.inspector_peer_id: str | None = None
        self.is_world = is_world_node
        super().__init__(
            max_connections,
            ratios,
            {self.P2P_PUBLIC: p2p_u, self.P2P_WORLD: p2p_w},
            public_key=public_key,
            token=token,
            policy=WorldRouting(self),
            **kwargs,
        )
        self.p2p_public = p2p_u
        self.p2p_world = p2p_w
        self._roles = RoleBook(self.peer_id_to_misc)
        self.role_to_peer_ids = self._roles.role_to_peer_ids
        self.peer_id_to_addrs = self._roles.addrs
        self._init_roster()

    # --- world sets -------------------------------------------------------------------

    def _world_changed(self) -> None:
        self.world_agents_and_world_masters_list = self.world_agents_list | self.world_masters_list
        self._pools.invalidate(self.P2P_WORLD)
        self._last_full = -float("inf")  # route the world's peers again at the next update()

    def _listed(self, peer_id: str) -> bool:
        return (
            peer_id in self.world_agents_and_world_masters_list
            or peer_id == self.world_node_peer_id
            or peer_id == self.inspector_peer_id
        )

    def _drop_peer_state(self, peer_id: str) -> None:
        super()._drop_peer_state(peer_id)
        if not self._listed(peer_id):
            self._roles.drop(peer_id)

    def set_world(self, world_peer_id: str | None) -> None:
        self.world_node_peer_id = world_peer_id
        self._roster.world_peer_id = world_peer_id
        self._world_changed()

    def set_inspector(self, inspector_peer_id: str | None) -> None:
        self.inspector_peer_id = inspector_peer_id
        self._world_changed()

    def get_world_peer_id(self) -> str | None:
        return self.world_node_peer_id

    def get_first_world_master(self) -> str | None:
        """The connected world master that joined first (None if none is connected)."""
        infos = self.get_all_connected_peer_infos(self.WORLD_MASTERS)
        masters = [i for i in infos if i["id"] in self.world_masters_list]
        return min(masters, key=lambda i: i["connected_at"])["id"] if masters else None

    def _replace_list(self, infos: list[dict[str, Any]] | None, masters: bool) -> set[str]:
        old = self.world_masters_list if masters else self.world_agents_list
        for peer_id in old:
            role = self._roles.get(peer_id)
            if role & ROLE_WORLD and (is_master_role(role) == masters):
                self._roles.drop(peer_id)
        new: set[str] = set()
        for info in infos or ():
            role = check_role(info.get("misc", 0))
            if is_master_role(role) != masters or not role & ROLE_WORLD:
                raise RoleError(
                    f"{info['id']}: role {role:#x} is not a world {'master' if masters else 'agent'}"
                )
            new.add(info["id"])
            self._roles.addrs[info["id"]] = list(info.get("addrs") or [])
            self.set_role(info["id"], role)
        return new

    def set_world_agents_list(
        self, world_agents_list_peer_infos: list[dict[str, Any]] | None
    ) -> None:
        self.world_agents_list = self._replace_list(world_agents_list_peer_infos, masters=False)
        self._world_changed()

    def set_world_masters_list(
        self, world_masters_list_peer_infos: list[dict[str, Any]] | None
    ) -> None:
        self.world_masters_list = self._replace_list(world_masters_list_peer_infos, masters=True)
        self._world_changed()

    def _add_to_list(self, peer_id: str, addrs: list[str], role: int, masters: bool) -> None:
        check_role(role)
        if not role & ROLE_WORLD or is_master_role(role) != masters:
            raise RoleError(
                f"{peer_id}: role {role:#x} is not a world {'master' if masters else 'agent'}"
            )
        (self.world_masters_list if masters else self.world_agents_list).add(peer_id)
        self._roles.addrs[peer_id] = list(addrs)
        self.set_role(peer_id, role)
        self._world_changed()

    def add_to_world_agents_list(
        self, peer_id: str, addrs: list[str], role: int = ROLE_WORLD
    ) -> None:
        self._add_to_list(peer_id, addrs, role, masters=False)

    def add_to_world_masters_list(self, peer_id: str, addrs: list[str], role: int = 3) -> None:
        self._add_to_list(peer_id, addrs, role, masters=True)

    async def remove_all_world_agents(self) -> None:
        """Disconnect every world peer and forget the world roles and addresses."""
        for info in self.get_all_connected_peer_infos(self.WORLD):
            await self.remove(info["id"])
        for peer_id in [p for p, role in self.peer_id_to_misc.items() if role & ROLE_WORLD]:
            self._roles.drop(peer_id)
        self.world_agents_list = set()
        self.world_masters_list = set()
        self._world_changed()

    # --- roles ------------------------------------------------------------------------

    def set_role(self, peer_id: str, new_role: int) -> None:
        self._roles.set(peer_id, new_role)
        info = self._peer_info(peer_id)
        if info is not None:
            info["misc"] = new_role

    def get_role(self, peer_id: str) -> int:
        return self._roles.get(peer_id)

    def count_by_role(self, role: int) -> int:
        return len(self.role_to_peer_ids.get(role, ()))

    def find_addrs_by_role(
        self, role: int, return_peer_ids_too: bool = False, discard_yourself: bool = False
    ) -> Any:
        own = {self.p2p_public.peer_id, self.p2p_world.peer_id} if discard_yourself else set()
        addrs, ids = [], []
        for peer_id in sorted(self.role_to_peer_ids.get(role, ())):
            a = self.get_addrs(peer_id)
            if a is not None and peer_id not in own:
                addrs.append(a)
                ids.append(peer_id)
        return (addrs, ids) if return_peer_ids_too else addrs

    def set_addresses_in_peer_info(self, peer_id: str, addresses: list[str]) -> None:
        info = self._peer_info(peer_id)
        if info is not None:
            info["addrs"][:] = list(addresses)  # in place: the list may be referenced elsewhere

    def get_addrs(self, peer_id: str) -> list[str] | None:
        return self._roles.addrs.get(peer_id)

    def in_connection_queues(self, peer_id: str) -> bool:
        return self._pools.pool_of(peer_id) is not None

    def is_public(self, peer_id: str) -> bool:
        return self.get_pool_of(peer_id) in self.PUBLIC

    def is_world_master(self, peer_id: str) -> bool:
        return self.get_pool_of(peer_id) in self.WORLD_MASTERS

    def is_world_node(self, peer_id: str) -> bool:
        return self.get_pool_of(peer_id) in self.WORLD_NODE

    def is_in_world(self, peer_id: str) -> bool:
        return self.get_pool_of(peer_id) in self.WORLD

    async def get_cv_hash_from_last_token(self, peer_id: str) -> str | None:
        token = self.get_last_token(peer_id)
        if token is None:
            return None
        return (await self.verify_token(token, peer_id))[1]

    # --- pool queries over several pools (the original's NodeConn signatures) ---------

    def get_added_after_updating(self, pool_names: Any = None) -> Any:
        return {p: self._added[p] for p in _names(pool_names, self.pool_names)}

    def get_removed_after_updating(self, pool_names: Any = None) -> Any:
        return {p: self._removed[p] for p in _names(pool_names, self.pool_names)}

    def size(self, pool_names: Any = None) -> int:
        if pool_names is None:
            return self._pools.size()
        return sum(self._pools.size(p) for p in _names(pool_names, ()))

    def is_connected(self, peer_id: str, pool_names: Any = None) -> bool:
        pool = self._pools.pool_of(peer_id)
        return pool is not None and (pool_names is None or pool in _names(pool_names, ()))

    def get_all_connected_peer_infos(self, pool_names: Any) -> list[PeerInfoDict]:
        return [i for p in _names(pool_names, ()) for i in self._pools.members(p).values()]

    async def subscribe(
        self, peer_id: str, channel: str, default_p2p_name: str | None = None
    ) -> bool:
        return await super().subscribe(peer_id, channel, default_p2p_name or self.P2P_WORLD)

    async def get_messages(
        self, p2p_name: str, allowed_not_connected_peers: Collection[str] | None = None
    ) -> list[Msg]:
        """As ConnectionPools, also accepting listed world agents and masters not in a pool."""
        allowed = set(self.world_agents_and_world_masters_list)
        if allowed_not_connected_peers:
            allowed |= set(allowed_not_connected_peers)
        return await super().get_messages(p2p_name, allowed)
