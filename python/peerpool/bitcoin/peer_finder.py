"""``PeerFinder``: the asyncio side of peer discovery for a ``ClientManager``.

With ``discover_peers=True`` the manager sends ``getaddr`` on each new peer
and hands every ``addr``/``addrv2`` it receives to its finder. The finder
keeps the addresses in a :class:`~peerpool.bitcoin.peer_discovery.Discovery`
(and in the peer store, so that ``use_persisted_peers`` dials them after a
restart) and, while fewer than ``target_peers`` peers are connected, adds
learned ones to the manager and dials them: each once (a failed or dropped
learned peer is removed again, and tried later only after the discovery's
``retry_after``), within the per-group limit, never a banned peer and never
one the manager already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.peer_discovery import Discovery, peers_from_message
from peerpool.errors import PeerpoolError, PeerStoreError
from peerpool.net.address import AddressKind

if TYPE_CHECKING:
    from peerpool.bitcoin.client import BitcoinClient
    from peerpool.bitcoin.manager import ClientManager

log = logging.getLogger(__name__)

#: How often the finder looks again without a connect, disconnect or new address
#: (tried peers become candidates again after ``retry_after``): often enough
#: to notice that at once, rarely enough to cost nothing.
RECHECK_INTERVAL = 5.0


class PeerFinder:
    """Dials learned peers for ``manager`` while it has fewer than
    ``target_peers`` distinct peers connected (see the module)."""

    def __init__(self, manager: ClientManager, discovery: Discovery, target_peers: int) -> None:
        self.manager = manager
        self.discovery = discovery
        self.target_peers = target_peers
        self.learned: set[str] = set()  # node ids the finder added to the manager
        self._dials: dict[str, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.bad_entries = 0  # addr entries that named no peer

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Run the finder in the background (until ``stop``)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop looking and abandon the dials in progress."""
        tasks = [t for t in (self._task, *self._dials.values(), *self._chores) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def wake(self) -> None:
        """Look again now (a peer came or went, or addresses came)."""
        self._wake.set()

    # --- what the manager hands over -----------------------------------------------

    async def on_connected(self, client: BitcoinClient) -> None:
        """Ask a new peer for addresses (once per peer, on its first connection)."""
        if client.id == client.peer:
            try:
                await client.send_message(msgs.GetAddr())
            except PeerpoolError as exc:  # it went away already
                log.debug("%s: getaddr not sent: %s", client, exc)
        self.wake()

    def on_disconnected(self, node_id: str) -> None:
        """A connection ended: a learned peer is removed (tried again later)."""
        if node_id in self.learned and node_id not in self._dials:
            self._chore(self._forget(node_id))
        self.wake()

    def on_addresses(self, message: msgs.Addr | msgs.AddrV2, client: BitcoinClient) -> None:
        """Keep the dialable addresses of an ``addr``/``addrv2`` (in the peer
        store too); entries that name no peer are counted and logged."""
        peers, errors = peers_from_message(message)
        if errors:
            self.bad_entries += len(errors)
            log.info("%s: %d address entries name no peer: %s", client, len(errors), errors[0])
        if self.manager.proxy is None:  # an onion address is dialled through Tor only
            peers = [p for p in peers if p.kind is not AddressKind.ONION]
        new = self.discovery.learn(peers, source=client.peer)
        store = self.manager.peer_store
        if new and store is not None:
            try:
                store.remember([a.node_id for a in new], limit=self.discovery.max_known)
            except PeerStoreError as exc:
                log.error("%s: learned addresses not stored: %s", client, exc)
        if new:
            log.info("%s: learned %d new peer addresses", client, len(new))
            self.wake()

    # --- dialling ---------------------------------------------------------------------

    async def _run(self) -> None:
        while not self.manager.closed:
            self._wake.clear()
            self.dial_missing()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RECHECK_INTERVAL)

    def dial_missing(self) -> list[str]:
        """Start dials of learned peers for the peers missing to
        ``target_peers``; returns the node ids dialled."""
        manager = self.manager
        connected = {c.peer: c.address for c in manager.available()}
        missing = self.target_peers - len(connected) - len(self._dials)
        if missing <= 0:
            return []
        in_use = [*connected.values(), *(manager.addresses[n] for n in self._dials)]
        store = manager.peer_store

        def excluded(node_id: str) -> bool:
            if node_id in manager.addresses:
                return True  # configured, persisted or already being tried
            return store is not None and store.is_banned(node_id)

        started = []
        for address in self.discovery.candidates(missing, in_use, excluded):
            node = manager.add_learned_address(address)
            self.discovery.tried(node)
            self.learned.add(node)
            self._dials[node] = asyncio.create_task(self._dial(node))
            started.append(node)
        return started

    async def _dial(self, node: str) -> None:
        try:
            await self.manager.connect_one(node)
            log.info("connected to learned peer %s", node)
        except PeerpoolError as exc:
            log.info("learned peer %s: %s", node, exc)
            await self._forget(node)
        finally:
            self._dials.pop(node, None)
            self.wake()

    async def _forget(self, node: str) -> None:
        manager = self.manager
        if node in manager.addresses and node not in manager.clients and not manager.closed:
            with contextlib.suppress(PeerpoolError):
                await manager.remove_address(node)
        self.learned.discard(node)

    def _chore(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
