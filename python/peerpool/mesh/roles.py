"""Roles of the agent networks, and the routing of world-network peers by them.

A role is a bitmask (the ``misc`` field of a peer info): ``0`` is a public
peer; bit 0 (``ROLE_WORLD``) marks a member of the world, bit 1
(``ROLE_MASTER``) a world master (so a world agent has ``misc & 3 == 1`` and a
master ``misc & 3 == 3``); higher bits are the application's own roles.

:class:`RoleBook` keeps role, role -> peers index (empty sets pruned) and the
addresses the roster gave. :class:`WorldRouting` is the NodeConn routing
policy: public peers by direction; world peers by the world agents, world
masters, world node and inspector sets; anyone else fits no pool (and is
disconnected, with a log line).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from peerpool.errors import RoleError

if TYPE_CHECKING:
    from peerpool.mesh.nodeconn import NodeConn

log = logging.getLogger(__name__)

ROLE_PUBLIC = 0
ROLE_WORLD = 1
ROLE_MASTER = 2
ROLE_WORLD_AGENT = ROLE_WORLD
ROLE_WORLD_MASTER = ROLE_WORLD | ROLE_MASTER


def check_role(role: int) -> int:
    if isinstance(role, bool) or not isinstance(role, int) or role < 0:
        raise RoleError(f"role must be a non-negative int bitmask, not {role!r}")
    if role != 0 and not role & ROLE_WORLD:
        raise RoleError(f"role {role:#x}: a non-public role must have the world bit (1) set")
    return role


def is_agent_role(role: int) -> bool:
    return role & ROLE_WORLD_MASTER == ROLE_WORLD_AGENT


def is_master_role(role: int) -> bool:
    return role & ROLE_WORLD_MASTER == ROLE_WORLD_MASTER


class RoleBook:
    """Roles and roster addresses of peers."""

    def __init__(self, misc: dict[str, int]) -> None:
        self.misc = misc  # shared with ConnectionPools.peer_id_to_misc
        self.role_to_peer_ids: dict[int, set[str]] = {}
        self.addrs: dict[str, list[str]] = {}

    def get(self, peer_id: str) -> int:
        return self.misc.get(peer_id, ROLE_PUBLIC)

    def set(self, peer_id: str, role: int) -> None:
        check_role(role)
        self._unindex(peer_id)
        self.misc[peer_id] = role
        self.role_to_peer_ids.setdefault(role, set()).add(peer_id)

    def drop(self, peer_id: str) -> None:
        self._unindex(peer_id)
        self.misc.pop(peer_id, None)
        self.addrs.pop(peer_id, None)

    def _unindex(self, peer_id: str) -> None:
        old = self.misc.get(peer_id)
        if old is None:
            return
        peers = self.role_to_peer_ids.get(old)
        if peers is not None:
            peers.discard(peer_id)
            if not peers:
                del self.role_to_peer_ids[old]


class WorldRouting:
    """The NodeConn routing policy (see the module docstring)."""

    def __init__(self, conn: NodeConn) -> None:
        self.conn = conn

    def route(self, network: str, peer_id: str, info: Any) -> str | None:
        c = self.conn
        inbound = info["direction"] == "incoming"
        if network == c.P2P_PUBLIC:
            return c.IN_PUBLIC if inbound else c.OUT_PUBLIC
        if peer_id in c.world_agents_list:
            return c.IN_WORLD_AGENTS if inbound else c.OUT_WORLD_AGENTS
        if peer_id == c.world_node_peer_id:
            return c.IN_WORLD_NODE if inbound else c.OUT_WORLD_NODE
        if peer_id in c.world_masters_list or peer_id == c.inspector_peer_id:
            return c.IN_WORLD_MASTERS if inbound else c.OUT_WORLD_MASTERS
        log.info(
            "world peer %s is no world agent, master, world node or inspector: disconnecting it",
            peer_id,
        )
        return None
