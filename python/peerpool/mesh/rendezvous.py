"""The rendezvous roster: the world node's list of who is in the world.

The world node publishes it on the topic ``<world id>::ps:rv`` as JSON::

    {"update_count": 7, "peers": [{"id": "12D3KooW...", "addrs": ["/ip4/..."], "misc": 1}, ...]}

either as the topic data itself or as the ``json_content`` of a ``Msg``
whose sender is the world node. A roster is accepted only if its signed
author is the world node we were told of, and only if its ``update_count`` is
higher than the last one accepted (a replayed or reordered roster is ignored).
Each is bounded in bytes and peers before it is parsed further.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from peerpool.errors import MeshMessageError, RosterError
from peerpool.mesh.messages import Msg
from peerpool.mesh.roles import check_role

MAX_ROSTER_BYTES = 8 * 1024 * 1024
MAX_ROSTER_PEERS = 50_000
MAX_ADDRS_PER_PEER = 32

# why a roster was not taken (counted by NodeConn as stats["roster_<reason>"])
FOREIGN = "foreign"  # not authored by the world node
STALE = "stale"  # update_count not above the last accepted
BAD = "bad"  # not a roster


def rendezvous_topic(world_peer_id: str) -> str:
    return f"{world_peer_id}::ps:rv"


@dataclass(frozen=True)
class Roster:
    update_count: int
    peers: tuple[dict[str, Any], ...]  # {"id", "addrs" (list), "misc"}

    def to_json(self) -> bytes:
        return json.dumps({"update_count": self.update_count, "peers": list(self.peers)}).encode()


def parse_roster(data: bytes, world_peer_id: str) -> Roster:
    """A roster from topic data (raw JSON, or a Msg from the world node); RosterError if not."""
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterError(f"roster of {len(data)} bytes is over {MAX_ROSTER_BYTES}")
    text: str | bytes = data
    if not data.lstrip().startswith(b"{"):
        try:
            msg = Msg.from_bytes(data)
        except MeshMessageError as exc:
            raise RosterError(f"roster is neither JSON nor a Msg: {exc}") from None
        if msg.sender != world_peer_id or msg.content_kind != "json_content":
            raise RosterError("roster Msg is not JSON content from the world node")
        text = msg.proto.json_content
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RosterError(f"roster is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RosterError("roster is not a JSON object")
    count = doc.get("update_count")
    peers = doc.get("peers", [])
    if isinstance(count, bool) or not isinstance(count, int):
        raise RosterError(f"roster update_count {count!r} is not an int")
    if not isinstance(peers, list) or len(peers) > MAX_ROSTER_PEERS:
        raise RosterError(f"roster peers is not a list of at most {MAX_ROSTER_PEERS}")
    out = []
    for p in peers:
        if not isinstance(p, dict) or not isinstance(p.get("id"), str):
            raise RosterError(f"roster entry {p!r:.80} has no id")
        addrs = p.get("addrs")
        if addrs is None:  # the world node lists peers it has no address of yet
            continue
        if not isinstance(addrs, list) or len(addrs) > MAX_ADDRS_PER_PEER:
            raise RosterError(f"roster entry {p['id']}: addrs is not a short list")
        if not all(isinstance(a, str) for a in addrs):
            raise RosterError(f"roster entry {p['id']}: an address is not a string")
        misc = p.get("misc", 0)
        try:
            check_role(misc)
        except Exception as exc:
            raise RosterError(f"roster entry {p['id']}: {exc}") from None
        out.append({"id": p["id"], "addrs": list(addrs), "misc": misc})
    return Roster(count, tuple(out))


class RosterTracker:
    """Accepts rosters from the world node with increasing update counts."""

    def __init__(self) -> None:
        self.world_peer_id: str | None = None
        self.latest: Roster | None = None  # the newest accepted, not yet applied or applied

    def offer(self, source: str | None, data: bytes) -> Roster | str:
        """The roster if accepted, else the reason (FOREIGN, STALE, BAD)."""
        if self.world_peer_id is None or source != self.world_peer_id:
            return FOREIGN
        try:
            roster = parse_roster(data, self.world_peer_id)
        except RosterError:
            return BAD
        if self.latest is not None and roster.update_count <= self.latest.update_count:
            return STALE
        self.latest = roster
        return roster

    def reset(self) -> None:
        self.latest = None
