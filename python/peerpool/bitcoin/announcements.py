"""Announcements with the peer that made them: the manager-level queues.

Each :class:`~peerpool.bitcoin.client.BitcoinClient` keeps its own
``block_queue`` and ``tx_queue`` of bare inventory vectors. A
:class:`~peerpool.bitcoin.manager.ClientManager` can also gather what all its
connections announce into one queue per kind, each item an
:class:`Announcement` naming the connection it came on, so that one consumer
can watch the mempool of every peer and still know who told it what (to
request the transaction from that peer, or to see who relays what).

Queues are made on first use (a queue nobody reads would only drop) and are
bounded: past ``maxsize`` the oldest announcement is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import hash_hex

log = logging.getLogger(__name__)

DEFAULT_ANNOUNCEMENT_QUEUE_SIZE = 10_000

#: Inventory types that announce blocks and transactions.
BLOCK_TYPES = frozenset({msgs.InvType.BLOCK, msgs.InvType.CMPCT_BLOCK, msgs.InvType.WITNESS_BLOCK})
TX_TYPES = frozenset({msgs.InvType.TX, msgs.InvType.WTX, msgs.InvType.WITNESS_TX})


class Announcement(NamedTuple):
    """One inventory item and where it came from: ``peer`` is the peer's
    ``host:port`` (the peer store's key), ``client_id`` the connection's id
    (``host:port#k`` for the k-th connection to one peer)."""

    item: msgs.InvVector
    peer: str
    client_id: str

    @property
    def hash(self) -> bytes:
        """The announced hash, internal byte order."""
        return self.item.hash

    @property
    def hash_hex(self) -> str:
        """The announced hash as explorers show it (byte-reversed hex)."""
        return hash_hex(self.item.hash)

    def __repr__(self) -> str:
        return f"Announcement({self.item!r} from {self.client_id})"


class AnnouncementQueue:
    """A bounded queue of announcements that drops its oldest when full."""

    def __init__(self, kind: str, maxsize: int = DEFAULT_ANNOUNCEMENT_QUEUE_SIZE) -> None:
        self.kind = kind
        self.queue: asyncio.Queue[Announcement] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, announcement: Announcement) -> None:
        """Queue it; when full, drop the oldest first (logged at the 1st, 1,000th
        and every 100,000th drop)."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            if self.dropped in (1, 1000) or self.dropped % 100_000 == 0:
                log.warning(
                    "%s announcement queue full: %d dropped so far", self.kind, self.dropped
                )
        self.queue.put_nowait(announcement)
