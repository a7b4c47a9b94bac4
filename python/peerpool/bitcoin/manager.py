"""``ClientManager``: many peer connections, a :class:`~peerpool.pool.ClientPool`.

``concurrency`` connections are kept to each configured peer. Each is its
own pool slot: slot 0 has the peer's node id (``"host:port"``), slot *k* the
id ``"host:port#k"``, so the pool's bookkeeping, hooks and reconnects work
per connection while :attr:`BitcoinClient.peer` still names the peer (the
peer store's key). One handlers instance serves every connection and can
reach the manager through ``handlers.manager``.

Banned peers (in the peer store) are not dialed. Dropped connections are
redialed in the background with capped, jittered exponential backoff; a
refused connection is retried too (a restarted node is back in seconds).

Options beyond the configured peers (all off by default):

* ``use_persisted_peers``: also dial every peer the peer store remembers
  that is not banned (configured ones are not dialled twice);
* ``discover_peers``: learn peers from ``addr``/``addrv2`` and dial them
  while fewer than ``target_peers`` peers are connected
  (:mod:`peerpool.bitcoin.peer_finder`);
* ``wait_for``: ``async with`` returns once that many connections are up,
  or raises :class:`~peerpool.errors.PeerTimeoutError` after ``wait_timeout``.

``tx_announcements`` and ``block_announcements`` gather what every
connection announces, each item naming its peer
(:mod:`peerpool.bitcoin.announcements`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Self, TypeVar

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.announcements import (
    BLOCK_TYPES,
    DEFAULT_ANNOUNCEMENT_QUEUE_SIZE,
    TX_TYPES,
    Announcement,
    AnnouncementQueue,
)
from peerpool.bitcoin.budget import DEFAULT_PAYLOAD_BUDGET, PayloadBudget
from peerpool.bitcoin.client import BitcoinClient
from peerpool.bitcoin.handlers import Handlers, Mode
from peerpool.bitcoin.networks import Network, get_network, sha256d
from peerpool.bitcoin.peer_discovery import DEFAULT_PEERS_PER_GROUP, Discovery
from peerpool.bitcoin.peer_finder import PeerFinder
from peerpool.bitcoin.peer_store import PeerStore
from peerpool.bitcoin.protocol_config import ProtocolConfig
from peerpool.errors import (
    AddressError,
    BannedPeerError,
    InputError,
    PeerpoolError,
    PeerTimeoutError,
)
from peerpool.net import PEER, Address, Backoff, ProxyConfig, StreamIsolation, parse_address
from peerpool.pool import ClientPool, ConnectionInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Reconnects: quick at first (a restarted node is back in about a second),
#: then at most every 30 s.
DEFAULT_RECONNECT_BACKOFF = Backoff(initial=0.5, multiplier=2.0, cap=30.0, jitter=0.2)
#: Peers a discovering manager wants connected: Bitcoin Core's outbound full-relay count.
DEFAULT_TARGET_PEERS = 8


@dataclass(frozen=True)
class _SlotAddress(Address):
    """A peer's address for connection slot ``slot``: its own pool key."""

    slot: int = 0

    @property
    def node_id(self) -> str:
        base = super().node_id
        return base if self.slot == 0 else f"{base}#{self.slot}"

    @property
    def peer_address(self) -> Address:
        return Address(self.host, self.port, self.kind)


class BroadcastOutcome(NamedTuple):
    """The peer's ``reject`` if one came, and the ids of the connections (not
    used to send) on which the transaction was announced back to us."""

    reject: msgs.Reject | None
    announced_by: list[str]


class ClientManager(ClientPool[BitcoinClient]):
    """A pool of :class:`~peerpool.bitcoin.BitcoinClient` connections to a list of peers.

    ``async with manager:`` connects to every peer in the background and keeps
    the connections up (reconnecting with ``reconnect_backoff``, skipping peers
    the peer store has banned) until the block ends. One ``Handlers`` instance
    serves every connection. ``wait_for_n_peers`` waits for connections,
    ``get_next_available_peer`` and ``run_on_peer`` spread requests over them,
    ``broadcast_transaction_and_listen`` sends a transaction on some and listens
    on the others.

    Args:
        peers: ``host:port`` strings (the network's default port when left out).
        network: a network name or a ``Network``.
        handlers: shared by every connection; its ``manager`` is set to this manager.
        concurrency: connections per peer (each is its own pool member).
        mode: the clients' mode (``Mode.HIGH_LEVEL`` by default).
        config: protocol settings shared by the clients.
        peer_store: where attempts, failures and bans are recorded.
        proxy: a SOCKS5 proxy (Tor) for every connection.
        isolation: gives each connection its own Tor circuit.
        reconnect_backoff: the delay between reconnects of one peer.
        connect_timeout: seconds for each dial.
        payload_budget: bytes of non-block messages all connections together may
            be gathering at once; None for no total.
        **client_options: passed on to each ``BitcoinClient`` (``ping_interval``,
            ``request_timeout``, ``read_size``, ...).

    Raises:
        peerpool.errors.InputError: ``concurrency`` is below 1.
        peerpool.errors.UnknownNetworkError: ``network`` is not a known name.
        peerpool.errors.AddressError: a peer address cannot be parsed.
    """

    def __init__(
        self,
        peers: Iterable[str],
        network: Network | str,
        handlers: Handlers | None = None,
        *,
        concurrency: int = 1,
        mode: Mode = Mode.HIGH_LEVEL,
        config: ProtocolConfig | None = None,
        peer_store: PeerStore | None = None,
        proxy: ProxyConfig | None = None,
        isolation: StreamIsolation | None = None,
        reconnect_backoff: Backoff | None = None,
        connect_timeout: float = 30.0,
        payload_budget: int | None = DEFAULT_PAYLOAD_BUDGET,
        use_persisted_peers: bool = False,
        discover_peers: bool = False,
        target_peers: int = DEFAULT_TARGET_PEERS,
        peers_per_group: int = DEFAULT_PEERS_PER_GROUP,
        wait_for: int = 0,
        wait_timeout: float = 30.0,
        **client_options: Any,
    ) -> None:
        """``client_options`` go to each BitcoinClient (``ping_interval``,
        ``request_timeout``, ``read_size``, ...). ``payload_budget``: bytes of
        non-block messages all connections together may be gathering at once
        (:mod:`peerpool.bitcoin.budget`); None for no total.

        ``use_persisted_peers``: dial the peer store's peers that are not
        banned beside ``peers`` (needs ``peer_store``). ``discover_peers``:
        learn peers from ``addr``/``addrv2`` and dial them while fewer than
        ``target_peers`` distinct peers are connected, at most
        ``peers_per_group`` per address group. ``wait_for``: connections
        ``async with`` waits for, at most ``wait_timeout`` seconds.

        Raises InputError for a bad option (``use_persisted_peers`` without
        a store, a count below its minimum) and AddressError for a bad peer."""
        if concurrency < 1:
            raise InputError("concurrency must be at least 1")
        if use_persisted_peers and peer_store is None:
            raise InputError("use_persisted_peers needs a peer_store")
        if wait_for < 0 or target_peers < 1 or peers_per_group < 1:
            raise InputError("wait_for must be >= 0, target_peers and peers_per_group >= 1")
        if not wait_timeout > 0:
            raise InputError(
                f"wait_timeout must be a positive number of seconds, not {wait_timeout}"
            )
        self.network = get_network(network) if isinstance(network, str) else network
        self.handlers = handlers if handlers is not None else Handlers()
        self.handlers.manager = self
        self.concurrency = concurrency
        self.mode = mode
        self.config = config or ProtocolConfig()
        self.peer_store = peer_store
        self.proxy = proxy
        self.isolation = isolation
        self.reconnect_backoff = reconnect_backoff or DEFAULT_RECONNECT_BACKOFF
        self.client_options = client_options
        self.payload_budget = None if payload_budget is None else PayloadBudget(payload_budget)
        self.wait_for = wait_for
        self.wait_timeout = wait_timeout
        configured = [parse_address(p, self.network.default_port) for p in _as_list(peers)]
        if use_persisted_peers:
            configured += self._persisted_peers({a.node_id for a in configured})
        slots = [
            _SlotAddress(a.host, a.port, a.kind, slot)
            for a in configured
            for slot in range(concurrency)
        ]
        super().__init__(
            slots, default_port=self.network.default_port, connect_timeout=connect_timeout
        )
        self._turn = itertools.count()
        self._peers_changed = asyncio.Condition()
        self._generation = 0
        self.finder: PeerFinder | None = None
        if discover_peers:
            discovery = Discovery(peers_per_group=peers_per_group)
            self.finder = PeerFinder(self, discovery, target_peers)
        self._announcement_queues: dict[str, AnnouncementQueue] = {}

    def _persisted_peers(self, configured: set[str]) -> list[Address]:
        """The store's peers that are not banned and not configured already."""
        store = self.peer_store
        assert store is not None
        found = []
        for peer in store.usable(store.peers()):
            try:
                address = parse_address(peer, self.network.default_port)
            except AddressError as exc:  # a key another program wrote: not ours to dial
                log.warning("peer store entry %r skipped: %s", peer, exc)
                continue
            if address.node_id not in configured:
                configured.add(address.node_id)
                found.append(address)
        return found

    # --- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start connecting to every peer (in the background) and keep the
        connections up until the block ends; with ``wait_for``, return once
        that many connections are up. Raises PeerTimeoutError (the manager
        closed again) if they are not up within ``wait_timeout``."""
        self.start_reconnect_task(self.reconnect_backoff)
        if self.finder is not None:
            self.finder.start()
        if self.wait_for:
            try:
                await self.wait_for_n_peers(self.wait_for, self.wait_timeout)
            except BaseException:
                await self.close_all()
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close_all()

    async def close_all(self) -> list[tuple[str, BaseException]]:
        """Stop discovery (if on), then close every connection (see ClientPool)."""
        if self.finder is not None:
            await self.finder.stop()
        return await super().close_all()

    # --- ClientPool hooks ---------------------------------------------------------------

    def create_client(self, conn: ConnectionInfo) -> BitcoinClient:
        """The pool hook: a ``BitcoinClient`` for the connection ``conn``, with the manager's settings.

        Raises:
            peerpool.errors.BannedPeerError: the peer store has banned this peer.
        """
        address = conn.address
        peer = address.peer_address if isinstance(address, _SlotAddress) else address
        if self.peer_store is not None and self.peer_store.is_banned(peer.node_id):
            record = self.peer_store.get(peer.node_id)
            reason = record.ban_reason if record else None
            raise BannedPeerError(f"{peer.node_id} is banned ({reason})")
        return BitcoinClient(
            peer,
            self.network,
            self.handlers,
            mode=self.mode,
            config=self.config,
            proxy=self.proxy,
            isolation=self.isolation.credentials(PEER) if self.isolation else None,
            connect_timeout=self.connect_timeout,
            peer_store=self.peer_store,
            manager=self,
            client_id=conn.node_id,
            payload_budget=self.payload_budget,
            **self.client_options,
        )

    async def on_connected(self, conn: ConnectionInfo, client: BitcoinClient) -> None:
        """The pool hook: asks the peer for addresses when discovering, and
        wakes ``wait_for_n_peers`` and ``peers_changed``."""
        if self.finder is not None:
            await self.finder.on_connected(client)
        await self._notify()

    async def on_disconnected(
        self, conn: ConnectionInfo, client: BitcoinClient, cause: BaseException | None
    ) -> None:
        """The pool hook: logs the cause and wakes ``wait_for_n_peers`` and ``peers_changed``."""
        if cause is not None:
            log.info("%s: disconnected: %s", client, cause)
        if self.finder is not None:
            self.finder.on_disconnected(conn.node_id)
        await self._notify()

    def add_learned_address(self, address: Address) -> str:
        """Add a peer found by discovery (one connection, slot 0); returns its node id."""
        return self.add_address(_SlotAddress(address.host, address.port, address.kind, 0))

    # --- what connections deliver ---------------------------------------------------

    def note_message(self, message: msgs.Message, client: BitcoinClient) -> None:
        """Called by each client for every message after its handlers: hands
        ``addr``/``addrv2`` to discovery (when on). Never raises."""
        if isinstance(message, (msgs.Addr, msgs.AddrV2)) and self.finder is not None:
            self.finder.on_addresses(message, client)

    def note_announcement(self, item: msgs.InvVector, client: BitcoinClient) -> None:
        """Called by each HIGH_LEVEL client for every block or transaction its
        peer announced (``inv``, or BIP130 ``headers``): feeds the manager's
        announcement queues that exist. Never raises."""
        kind = "tx" if item.kind in TX_TYPES else "block" if item.kind in BLOCK_TYPES else ""
        queue = self._announcement_queues.get(kind)
        if queue is not None:
            queue.put(Announcement(item, client.peer, client.id))

    def _announcements(self, kind: str) -> asyncio.Queue[Announcement]:
        queue = self._announcement_queues.get(kind)
        if queue is None:
            queue = self._announcement_queues[kind] = AnnouncementQueue(
                kind, DEFAULT_ANNOUNCEMENT_QUEUE_SIZE
            )
        return queue.queue

    @property
    def tx_announcements(self) -> asyncio.Queue[Announcement]:
        """Transaction announcements of every HIGH_LEVEL connection from the
        first access on, each with its peer; bounded (the oldest are dropped)."""
        return self._announcements("tx")

    @property
    def block_announcements(self) -> asyncio.Queue[Announcement]:
        """Block announcements (``inv`` or BIP130 ``headers``) of every
        HIGH_LEVEL connection from the first access on, each with its peer;
        bounded (the oldest are dropped)."""
        return self._announcements("block")

    async def _notify(self) -> None:
        async with self._peers_changed:
            self._generation += 1
            self._peers_changed.notify_all()

    # --- choosing peers ------------------------------------------------------------------

    def available(self) -> list[BitcoinClient]:
        """Connections that finished the handshake and are still up, in id order."""
        return [self.clients[n] for n in sorted(self.clients) if self.clients[n].is_connected]

    async def get_next_available_peer(self, timeout: float | None = None) -> BitcoinClient:
        """The next connected client, round robin; waits (up to ``timeout``)
        while none is connected."""
        await self.wait_for_n_peers(1, timeout)
        clients = self.available()
        while not clients:  # it went away between the wake-up and here
            await self.wait_for_n_peers(1, timeout)
            clients = self.available()
        return clients[next(self._turn) % len(clients)]

    async def wait_for_n_peers(self, n: int, timeout: float | None = None) -> list[BitcoinClient]:
        """Wait until at least ``n`` connections are up and return them;
        raises PeerTimeoutError after ``timeout`` seconds (None: no limit)."""

        async def enough() -> None:
            async with self._peers_changed:
                await self._peers_changed.wait_for(lambda: len(self.available()) >= n)

        try:
            await asyncio.wait_for(enough(), timeout)
        except asyncio.TimeoutError:
            raise PeerTimeoutError(
                f"{len(self.available())} of the {n} connections wanted within {timeout:g} s"
            ) from None
        return self.available()

    @property
    def generation(self) -> int:
        """Counts connects and disconnects (for ``peers_changed``)."""
        return self._generation

    async def peers_changed(self, since: int) -> None:
        """Return once a connection came or went after ``generation`` was ``since``."""
        async with self._peers_changed:
            await self._peers_changed.wait_for(lambda: self._generation != since)

    # --- transactions --------------------------------------------------------------------

    async def broadcast_transaction_and_listen(
        self, raw_tx: bytes, broadcast_peer_count: int = 1, wait_time: float = 5.0
    ) -> BroadcastOutcome:
        """Send ``raw_tx`` on ``broadcast_peer_count`` connections and listen on
        the others; returns the first reject, if any, and the ids of the
        listening connections that announced it back. Returns at a reject, once
        every listener has announced it (it was accepted), or after ``wait_time``."""
        clients = self.available() or await self.wait_for_n_peers(1, wait_time)
        senders, listeners = clients[:broadcast_peer_count], clients[broadcast_peer_count:]
        txid = sha256d(bytes(raw_tx))
        watches = {c.id: c.requests.watch(txid) for c in listeners}
        sends = [
            asyncio.create_task(c.broadcast_transaction(raw_tx, wait=wait_time)) for c in senders
        ]
        reject: msgs.Reject | None = None
        loop = asyncio.get_running_loop()
        end = loop.time() + wait_time
        pending: set[asyncio.Future[Any]] = {*sends, *watches.values()}
        try:
            while pending and reject is None and (remaining := end - loop.time()) > 0:
                if listeners and all(w.done() for w in watches.values()):
                    break  # every other connection relayed it: accepted
                done, pending = await asyncio.wait(
                    pending, timeout=remaining, return_when="FIRST_COMPLETED"
                )
                for task in sends:
                    if task in done and not task.exception():
                        reject = reject or task.result()
        finally:
            for task in sends:
                task.cancel()
            await asyncio.wait(sends)
            for client in listeners:
                client.requests.unwatch(txid)  # cancels the watches still waiting
        failed = [t.exception() for t in sends if not t.cancelled() and t.exception()]
        if sends and len(failed) == len(sends) and failed[0] is not None:
            raise failed[0]
        announced_by = [
            cid
            for cid, w in watches.items()
            if w.done() and not w.cancelled() and not w.exception()
        ]
        return BroadcastOutcome(reject, announced_by)

    # --- helpers ------------------------------------------------------------------------

    async def run_on_peer(
        self, what: str, call: Callable[[BitcoinClient], Awaitable[T]], attempts: int = 3
    ) -> T:
        """Run ``call(client)`` on the next available peer, moving to another
        one when the connection fails (``attempts`` times at most)."""
        last: PeerpoolError | None = None
        for _ in range(attempts):
            client = await self.get_next_available_peer()
            try:
                return await call(client)
            except PeerpoolError as exc:
                if client.is_connected:
                    raise  # the answer itself was the problem, not the connection
                log.info("%s failed on %s: %s; trying another peer", what, client, exc)
                last = exc
        assert last is not None
        raise last


def _as_list(peers: Iterable[str]) -> list[str]:
    return [peers] if isinstance(peers, str) else list(peers)
