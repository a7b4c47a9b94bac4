"""DirectoryClient: one connection to a JoinMarket directory (TCP or Tor).

The asyncio driver of :class:`~peerpool.joinmarket.protocol.DirectoryClientProtocol`:
it dials with :func:`peerpool.net.dial` (``.onion`` through Tor with the
``directory`` isolation category), runs the handshake and nick auth, answers
pings, keeps the directory's peerlist, verifies signed private messages and
hands messages to listeners and to a bounded queue. It fits the
:class:`~peerpool.pool.PoolClient` contract (``connect``, ``close``,
``wait_closed``), so :class:`~peerpool.joinmarket.pool.DirectoryClientPool`
can keep a set of them connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from peerpool.errors import DirectoryConnectionError, InputError, JoinMarketError, PeerpoolError
from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.messages import NOT_SERVING_ONION
from peerpool.joinmarket.offers import ORDERBOOK, Offer, offers_in, split_commands
from peerpool.joinmarket.peerlist import PeerEntry
from peerpool.joinmarket.protocol import (
    DirectoryClientProtocol,
    DisconnectRequested,
    Dropped,
    Event,
    HandshakeDone,
    NickAuthMode,
    PeersUpdated,
    PrivateMessage,
    PublicMessage,
)
from peerpool.joinmarket.wire import MAX_LINE_BYTES
from peerpool.net import DIRECTORY, PEER, Address, ProxyConfig, StreamIsolation, dial, parse_address

log = logging.getLogger(__name__)

DEFAULT_PORT = 5222  # the onion virtual port directories serve on (jmcore ONION_VIRTUAL_PORT)
MAX_PEERS = 100_000  # bound on the peerlist we keep per directory
Message = PublicMessage | PrivateMessage
Listener = Callable[["DirectoryClient", Message], None]
LeaveListener = Callable[["DirectoryClient", str], None]


class DirectoryClient:
    """A maker's or taker's connection to one directory node."""

    def __init__(
        self,
        address: str | Address,
        network: str,
        *,
        identity: NickIdentity | None = None,
        proxy: ProxyConfig | None = None,
        isolation: StreamIsolation | None = None,
        location: str = NOT_SERVING_ONION,
        nick_auth: NickAuthMode = NickAuthMode.PREFER,
        directory_id: str | None = None,
        connect_timeout: float = 30.0,
        max_line: int = MAX_LINE_BYTES,
        queue_size: int = 10_000,
        peer_nick: str | None = None,
        extra_features: frozenset[str] = frozenset(),
    ) -> None:
        """``peer_nick`` makes this a direct connection to that maker's own onion
        (peer isolation category, 793 answered by 793) instead of a directory."""
        self.address = parse_address(address, DEFAULT_PORT)
        self.node_id = self.address.node_id
        self.network = network
        self.identity = identity or NickIdentity()
        self.proxy = proxy
        self.isolation = isolation
        self.connect_timeout = connect_timeout
        # JMP-0005: only answer a challenge for the directory we meant to reach. An
        # onion's identity is its endpoint; any other host needs a configured id,
        # without which we do not offer nick auth at all (or refuse, if required)
        if directory_id is None and self.address.is_onion:
            directory_id = self.node_id.lower()
        if directory_id is None and peer_nick is None:
            if nick_auth is NickAuthMode.REQUIRE:
                raise InputError(
                    f"{self.node_id}: nick auth required but no directory id configured "
                    "(only an onion's is implied by its address)"
                )
            nick_auth = NickAuthMode.OFF
        if peer_nick is not None:
            nick_auth = NickAuthMode.OFF  # JMP-0005 is between a peer and a directory
        self.directory_id = directory_id
        self.protocol = DirectoryClientProtocol(
            self.identity,
            network,
            location=location,
            nick_auth=nick_auth,
            directory_id=self.directory_id,
            max_line=max_line,
            peer_nick=peer_nick,
            extra_features=extra_features,
        )
        self.peer_nick = peer_nick
        self.peers: dict[str, PeerEntry] = {}
        self.queue: asyncio.Queue[Message] = asyncio.Queue(queue_size)
        self.dropped_overflow = 0
        self.dropped_invalid = 0
        self.listeners: list[Listener] = []
        self.leave_listeners: list[LeaveListener] = []
        self.handshake: HandshakeDone | None = None
        self._peerlist_chunks = 0
        self._peerlist_event = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"DirectoryClient({self.node_id}, {self.nick})"

    @property
    def nick(self) -> str:
        """Our nick on this connection (from the identity's key)."""
        return self.identity.nick

    @property
    def connected(self) -> bool:
        """True from the end of the handshake until the connection ends."""
        return (
            self.handshake is not None
            and self._reader_task is not None
            and not self._reader_task.done()
        )

    # --- PoolClient contract ----------------------------------------------------

    async def connect(self) -> None:
        """Dial, handshake and (when offered) authenticate our nick."""
        if self._reader_task is not None:
            raise DirectoryConnectionError(f"{self.node_id}: connect() called twice")
        credentials = None
        if self.proxy is not None and self.isolation is not None:
            credentials = self.isolation.credentials(PEER if self.peer_nick else DIRECTORY)
        reader, writer = await dial(
            self.address,
            proxy=self.proxy,
            isolation=credentials,
            timeout=self.connect_timeout,
        )
        self._writer = writer
        self._ready = asyncio.get_running_loop().create_future()
        self.protocol.start()
        writer.write(self.protocol.data_to_send())
        self._reader_task = asyncio.create_task(self._read(reader), name=f"jm-dir-{self.node_id}")
        # the ending is reported by wait_closed(); nobody may be waiting for it
        self._reader_task.add_done_callback(_retrieve)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.connect_timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Say goodbye and close; idempotent."""
        self._closing = True
        writer = self._writer
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(Exception):
                self.protocol.send_disconnect()
                writer.write(self.protocol.data_to_send())
            writer.close()
        task = self._reader_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task), 5)
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def wait_closed(self) -> None:
        """Return when the connection ended; raise its cause if it broke."""
        task = self._reader_task
        if task is None:
            return
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None and not self._closing:
            raise task.exception()  # type: ignore[misc]

    # --- the pump ----------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        assert self._writer is not None and self._ready is not None
        writer = self._writer
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise DirectoryConnectionError(f"{self.node_id}: closed by the directory")
                self.protocol.receive_data(data)
                for event in self.protocol.events_received():
                    self._dispatch(event)
                out = self.protocol.data_to_send()
                if out:
                    writer.write(out)
                    await writer.drain()
        except (JoinMarketError, OSError) as exc:
            error = (
                exc
                if isinstance(exc, PeerpoolError)
                else DirectoryConnectionError(f"{self.node_id}: {exc}")
            )
            if not self._ready.done():
                self._ready.set_exception(error)
            if not self._closing:
                log.info("%s: connection ended: %s", self.node_id, error)
            writer.close()
            raise error from None
        finally:
            if not self._ready.done():
                self._ready.set_exception(DirectoryConnectionError(f"{self.node_id}: closed"))
            if not self._ready.cancelled():
                self._ready.exception()  # mark retrieved: connect() may be gone already

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, PublicMessage | PrivateMessage):
            self._deliver(event)
        elif isinstance(event, PeersUpdated):
            self._update_peers(event.entries)
        elif isinstance(event, HandshakeDone):
            self.handshake = event
            assert self._ready is not None
            if not self._ready.done():
                self._ready.set_result(None)
        elif isinstance(event, Dropped):
            self.dropped_invalid += 1
        elif isinstance(event, DisconnectRequested):
            log.info("%s: directory asked us to disconnect", self.node_id)

    def _deliver(self, message: Message) -> None:
        # the sender is evidently on this directory even if no peerlist said so
        if message.from_nick not in self.peers and len(self.peers) < MAX_PEERS:
            self.peers[message.from_nick] = PeerEntry(message.from_nick)
        for listener in list(self.listeners):
            try:
                listener(self, message)
            except Exception:  # one bad listener must not stop the pump
                log.exception("%s: message listener failed", self.node_id)
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # bounded: the oldest unread message goes, the newest is kept
            self.dropped_overflow += 1
            self.queue.get_nowait()
            self.queue.put_nowait(message)

    def _update_peers(self, entries: tuple[PeerEntry, ...]) -> None:
        self._peerlist_chunks += 1
        self._peerlist_event.set()
        for entry in entries:
            if not entry.disconnected:
                if entry.nick in self.peers or len(self.peers) < MAX_PEERS:
                    self.peers[entry.nick] = entry
            elif self.peers.pop(entry.nick, None) is not None:
                for listener in list(self.leave_listeners):
                    try:
                        listener(self, entry.nick)
                    except Exception:
                        log.exception("%s: leave listener failed", self.node_id)

    async def receive(self, timeout: float | None = None) -> Message:
        """The oldest unread message (the queue keeps the newest ``queue_size``)."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    # --- sending -----------------------------------------------------------------

    async def _flush(self) -> None:
        if self._writer is None or not self.connected:
            raise DirectoryConnectionError(f"{self.node_id}: not connected")
        self._writer.write(self.protocol.data_to_send())
        await self._writer.drain()

    async def send_public(self, cmd: str, args: str = "") -> None:
        """Send a public message (``cmd`` such as ``!orderbook``, with ``args``)
        through this directory.

        Raises:
            peerpool.errors.DirectoryConnectionError: the connection is not up
                (not connected yet, closed, or the handshake has not finished).
        """
        self.protocol.send_public(cmd, args)
        await self._flush()

    async def send_private(self, to_nick: str, cmd: str, data: str) -> None:
        """Send a signed private message through this directory."""
        self.protocol.send_private(to_nick, cmd, data)
        await self._flush()

    async def get_peerlist(
        self, *, quiet: float = 0.3, timeout: float = 10.0
    ) -> dict[str, PeerEntry]:
        """Ask for the peerlist; return it once chunks stop coming for ``quiet`` s
        (there is no end marker in the protocol), or at ``timeout``."""
        self.protocol.request_peerlist()
        start = self._peerlist_chunks
        self._peerlist_event.clear()
        await self._flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            wait = left if self._peerlist_chunks == start else min(quiet, left)
            try:
                await asyncio.wait_for(self._peerlist_event.wait(), wait)
            except asyncio.TimeoutError:
                break
            self._peerlist_event.clear()
        return dict(self.peers)

    # --- taker helpers -----------------------------------------------------------

    async def fetch_orderbook(self, *, quiet: float = 2.0, max_wait: float = 10.0) -> list[Offer]:
        """``!orderbook`` to everyone, then offers until ``quiet`` s pass without a new
        one or ``max_wait`` s in all. Offers are deduplicated by (counterparty, oid)."""
        collector = OfferCollector()
        self.listeners.append(collector.on_message)
        try:
            await self.send_public(ORDERBOOK)
            await collector.wait(quiet, max_wait)
        finally:
            self.listeners.remove(collector.on_message)
        return list(collector.offers.values())


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class OfferCollector:
    """Collects offers from private messages, across one or more directories."""

    def __init__(self) -> None:
        self.offers: dict[tuple[str, int], Offer] = {}
        self.sources: dict[str, set[str]] = {}  # maker nick -> directories it answered through
        self.malformed = 0
        self._changed = asyncio.Event()

    def on_message(self, client: DirectoryClient, message: Message) -> None:
        if not isinstance(message, PrivateMessage):
            return
        text = message.command + (" " + message.data if message.data else "")
        try:
            offers = offers_in(message.from_nick, split_commands(text))
        except JoinMarketError:
            self.malformed += 1
            return
        if not offers:
            return
        self.sources.setdefault(message.from_nick, set()).add(client.node_id)
        for offer in offers:
            if offer.key not in self.offers:
                self._changed.set()
            self.offers[offer.key] = offer

    async def wait(self, quiet: float, max_wait: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(quiet, left))
            except asyncio.TimeoutError:
                if self.offers or loop.time() >= deadline:
                    return
