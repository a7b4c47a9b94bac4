"""``BitcoinClient``: one peer connection, the asyncio driver of the protocol core.

It dials (TCP, or SOCKS5/Tor through :func:`peerpool.net.dial`), runs the
handshake of :class:`~peerpool.bitcoin.protocol.BitcoinProtocol`, then one
task (:mod:`peerpool.bitcoin.reader`) reads, feeds the core and dispatches
each event to the handlers in arrival order, waiting for each handler before
reading on (backpressure reaches the peer through TCP, and memory stays
bounded by one read plus one chunk). Timers live in the client and its
tasks only:

* a minimum rate for a message in flight (:mod:`peerpool.bitcoin.stall`):
  while a message is partly received its bytes must come at
  ``min_receive_rate`` or more, measured over ``stall_window`` seconds of
  waiting, or the peer is dropped with :class:`~peerpool.errors.PeerTimeoutError`
  (a peer dripping a byte a second is caught; a 4 GB block on a slow link is not);
* keepalive: a ``ping`` every ``ping_interval``; the connection is dropped
  with :class:`~peerpool.errors.PeerTimeoutError` when no ``pong`` comes back
  within ``ping_timeout``, unless a message is in flight and its bytes are
  still coming (a pong queued behind a 4 GB block reaches us only after the
  block; the minimum rate bounds how long that may take) or a handler of
  ours is busy;
* a deadline for each HIGH_LEVEL request (``request_timeout``), extended by
  the same rule only: small messages arriving meanwhile do not extend it. A
  request that misses its deadline ends the connection.

Every timeout is recorded as a failure in the peer store. A failing peer
store (a full disk) ends the connection with
:class:`~peerpool.errors.PeerStoreWriteError` rather than leaving it half done.

The client meets the :class:`~peerpool.pool.PoolClient` contract
(``connect``/``close``/``wait_closed``), so a ``ClientPool`` can own it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import hash_hex
from peerpool.bitcoin.budget import PayloadBudget
from peerpool.bitcoin.handlers import Block, Handlers, Mode
from peerpool.bitcoin.keepalive import keep_alive
from peerpool.bitcoin.networks import Network, get_network, sha256d
from peerpool.bitcoin.peer_store import PeerStore
from peerpool.bitcoin.peer_verdict import record_end
from peerpool.bitcoin.pending import ChunkCallback, PendingRequests
from peerpool.bitcoin.protocol import BitcoinProtocol
from peerpool.bitcoin.protocol_config import ProtocolConfig
from peerpool.bitcoin.reader import read_until_closed
from peerpool.bitcoin.stall import DEFAULT_MIN_RECEIVE_RATE, DEFAULT_STALL_WINDOW, StallMeter
from peerpool.errors import (
    DialError,
    ModeError,
    PeerDisconnectedError,
    PeerpoolError,
    PeerStoreError,
    PeerTimeoutError,
)
from peerpool.net import Address, ProxyConfig, SocksAuth, dial, parse_address

if TYPE_CHECKING:
    from peerpool.bitcoin.manager import ClientManager

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bitcoin Core pings every 2 minutes (PING_INTERVAL) and gives up after 20
# (TIMEOUT_INTERVAL); an indexer wants to notice a dead peer sooner.
DEFAULT_PING_INTERVAL = 60.0
DEFAULT_PING_TIMEOUT = 60.0
DEFAULT_HANDSHAKE_TIMEOUT = 30.0
DEFAULT_REQUEST_TIMEOUT = 60.0
#: Bytes asked of the socket per read: large enough that a 100 MB block costs
#: about a hundred trips through Python, small enough to bound memory.
DEFAULT_READ_SIZE = 1 << 20
DEFAULT_INV_QUEUE_SIZE = 10_000


class BitcoinClient:
    """One connection to a Bitcoin or Bitcoin SV peer.

    Made with the peer's address and network; ``connect()`` dials and runs the
    version handshake, after which every message the peer sends is dispatched to
    ``handlers`` (an ``on_<command>`` method each, ``on_block``/``on_block_chunk``
    for blocks) in arrival order. In ``Mode.HIGH_LEVEL`` the request helpers
    (``get_headers``, ``get_block``, ``broadcast_transaction``) and ``inv_queue``
    work too. A client connects once; make a new one to reconnect (a
    :class:`~peerpool.bitcoin.ClientManager` does that for you).

    Args:
        address: ``host:port`` (the network's default port when left out), an
            ``.onion`` address with ``proxy``, or an ``Address``.
        network: a network name (``"bsv-regtest"``, ``"bsv-mainnet"``, ...) or a
            ``Network``.
        handlers: receives the messages; the base ``Handlers`` only logs them.
        mode: ``Mode.HIGH_LEVEL`` (the default) or ``Mode.LOW_LEVEL`` (messages
            only go to the handlers).
        config: protocol settings (user agent, services, chunk size, large
            message limit, ...).
        proxy: a SOCKS5 proxy (Tor) to dial through.
        isolation: SOCKS credentials that put this connection on its own Tor circuit.
        connect_timeout: seconds for the dial.
        handshake_timeout: seconds for the version handshake once connected.
        ping_interval: seconds between keepalive pings (0: none).
        ping_timeout: seconds to wait for the pong.
        request_timeout: deadline of each HIGH_LEVEL request.
        min_receive_rate: bytes/s a message in flight must arrive at.
        stall_window: seconds of waiting the rate is measured over.
        read_size: bytes asked of the socket per read.
        inv_queue_size: announcements kept in ``inv_queue``; older ones are dropped.
        peer_store: records attempts, failures and bans of this peer.
        manager: the manager that owns this client (set by the manager).
        client_id: the connection's id (the peer's ``host:port`` by default).
        payload_budget: the manager's cap on non-block payloads in flight.

    Raises:
        peerpool.errors.UnknownNetworkError: ``network`` is not a known name.
        peerpool.errors.AddressError: ``address`` cannot be parsed.
    """

    def __init__(
        self,
        address: str | Address,
        network: Network | str,
        handlers: Handlers | None = None,
        *,
        mode: Mode = Mode.HIGH_LEVEL,
        config: ProtocolConfig | None = None,
        proxy: ProxyConfig | None = None,
        isolation: SocksAuth | None = None,
        connect_timeout: float = 30.0,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        min_receive_rate: float = DEFAULT_MIN_RECEIVE_RATE,
        stall_window: float = DEFAULT_STALL_WINDOW,
        read_size: int = DEFAULT_READ_SIZE,
        inv_queue_size: int = DEFAULT_INV_QUEUE_SIZE,
        peer_store: PeerStore | None = None,
        manager: ClientManager | None = None,
        client_id: str | None = None,
        payload_budget: PayloadBudget | None = None,
    ) -> None:
        self.network = get_network(network) if isinstance(network, str) else network
        self.address = parse_address(address, self.network.default_port)
        self.id = client_id or self.address.node_id
        self.handlers = handlers if handlers is not None else Handlers()
        self.mode = mode
        self.config = config or ProtocolConfig()
        self.proxy = proxy
        self.isolation = isolation
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.request_timeout = request_timeout
        self._stall = StallMeter(min_receive_rate, stall_window)
        self.read_size = read_size
        self.peer_store = peer_store
        self.manager = manager
        self.protocol = BitcoinProtocol(
            self.network,
            self.config,
            peer_address=(self.address.host, self.address.port),
            budget=payload_budget,
        )
        self.requests = PendingRequests(inv_queue_size)
        if manager is not None:
            self.requests.on_announce = lambda item: manager.note_announcement(item, self)
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handshake: asyncio.Future[msgs.Version] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._pong_nonce: int | None = None
        self._pong = asyncio.Event()
        self._busy = False  # a handler is running: the peer is not to blame for silence
        self._ban_reason: str | None = None
        # loop time of the last read that brought bytes, or of a handler of ours ending
        self._last_activity = 0.0

    def __str__(self) -> str:
        return f"peer {self.id}"

    # --- state --------------------------------------------------------------------

    @property
    def peer(self) -> str:
        """The peer's ``host:port`` (the peer store's key; several clients may share it)."""
        return self.address.node_id

    @property
    def peer_version(self) -> msgs.Version | None:
        """The peer's ``version`` message, once the handshake got that far (else None)."""
        return self.protocol.peer_version

    @property
    def is_connected(self) -> bool:
        """True from the end of the handshake until the connection ends."""
        return self.protocol.established and self._closed is not None and not self._closed.done()

    @property
    def block_queue(self) -> asyncio.Queue[msgs.InvVector]:
        """New blocks the peer announced, by ``inv`` or BIP130 ``headers``
        (HIGH_LEVEL only: raises ModeError); ``follow_tips`` reads it."""
        self._require_high_level("block_queue")
        return self.requests.block_queue

    @property
    def tx_queue(self) -> asyncio.Queue[msgs.InvVector]:
        """New transactions the peer announced (HIGH_LEVEL only: raises
        ModeError); a mempool watcher reads it beside ``follow_tips``."""
        self._require_high_level("tx_queue")
        return self.requests.tx_queue

    @property
    def inv_queue(self) -> asyncio.Queue[msgs.InvVector]:
        """Blocks and transactions together, announced after the first access
        (HIGH_LEVEL only: raises ModeError). Prefer ``block_queue`` and ``tx_queue``."""
        self._require_high_level("inv_queue")
        return self.requests.inv_queue

    # --- the pool contract ----------------------------------------------------------

    async def connect(self) -> None:
        """Dial and complete the handshake; raises DialError, PeerTimeoutError or
        the protocol error that ended it."""
        if self._closed is not None:
            raise PeerpoolError(f"{self}: a client connects once; make a new one")
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        self._handshake = loop.create_future()
        try:
            reader, self._writer = await dial(
                self.address,
                proxy=self.proxy,
                isolation=self.isolation,
                timeout=self.connect_timeout,
                limit=max(self.read_size, 1 << 16),
            )
        except DialError as exc:
            self._finish(exc)
            raise
        self.protocol.initiate()
        self._tasks.append(asyncio.create_task(read_until_closed(self, reader)))
        await self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self._handshake), self.handshake_timeout)
        except asyncio.TimeoutError:
            error = PeerTimeoutError(f"{self}: no handshake within {self.handshake_timeout:g} s")
            await self._abort(error)
            raise error from None
        except BaseException:  # the reason was recorded when the connection ended
            await self.close()
            raise
        if self._closed.done():
            # it ended right after the handshake (a violation in the same read,
            # say): connect() does not return a client that is not connected
            await self.close()
            raise self._end_error()
        if self.ping_interval > 0:
            self._tasks.append(asyncio.create_task(self._keepalive()))

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._abort(None)

    async def wait_closed(self) -> None:
        """Return when the connection has ended; raise the reason unless we closed it."""
        if self._closed is None:
            return
        await asyncio.shield(self._closed)

    # --- sending ------------------------------------------------------------------------

    async def send_message(self, message: msgs.Message) -> None:
        """Encode ``message`` and write it to the peer, waiting while the socket's buffer is full.

        Raises:
            peerpool.errors.PeerDisconnectedError: the connection is closed or the write failed.
        """
        self.protocol.send(message)
        await self._flush()

    async def send_raw(self, command: str, payload: bytes) -> None:
        """Send a message given as its command and payload bytes, unchecked (for
        commands this library has no class for).

        Raises:
            peerpool.errors.PeerDisconnectedError: the connection is closed or the write failed.
        """
        self.protocol.send_raw(command, payload)
        await self._flush()

    async def _flush(self) -> None:
        data = self.protocol.data_to_send()
        writer = self._writer
        if not data:
            return
        if writer is None or writer.is_closing():
            raise PeerDisconnectedError(f"{self}: the connection is closed")
        writer.write(data)
        try:
            await writer.drain()
        except OSError as exc:
            raise PeerDisconnectedError(f"{self}: {exc}") from exc

    # --- HIGH_LEVEL helpers ------------------------------------------------------------

    async def get_headers(
        self, locator: list[bytes], stop: bytes = bytes(32), *, timeout: float | None = None
    ) -> msgs.Headers:
        """Send ``getheaders`` and return the peer's ``headers`` answer (at most
        2,000; fewer means the peer has no more after them)."""
        self._require_high_level("get_headers")
        if self.requests.headers_waiter is not None:
            raise PeerpoolError(f"{self}: one get_headers at a time per connection")
        waiter = self.requests.expect_headers()
        try:
            await self.send_message(
                msgs.GetHeaders(
                    msgs.PROTOCOL_VERSION, tuple(locator[: msgs.MAX_LOCATOR_HASHES]), stop
                )
            )
            return await self._wait(waiter, timeout, "headers")
        finally:
            if self.requests.headers_waiter is waiter:
                self.requests.headers_waiter = None

    async def get_block(
        self,
        block_hash: bytes,
        *,
        on_chunk: ChunkCallback | None = None,
        timeout: float | None = None,
    ) -> Block:
        """Fetch one block. A LARGE block's chunks go to the handlers and, in
        order, to ``on_chunk`` before this returns the block (without its raw
        bytes). Raises BlockNotFoundError if the peer does not have it."""
        self._require_high_level("get_block")
        request = self.requests.expect_block(bytes(block_hash), on_chunk)
        try:
            if not request.requested:  # a second caller shares the first one's getdata
                request.requested = True
                self.protocol.send_getdata([msgs.InvVector(msgs.InvType.BLOCK, bytes(block_hash))])
                await self._flush()
            return await self._wait(request.future, timeout, f"block {hash_hex(block_hash)}")
        finally:
            self.requests.forget_block(bytes(block_hash), request)

    async def broadcast_transaction(
        self, raw_tx: bytes, *, wait: float = 2.0
    ) -> msgs.Reject | None:
        """Send a transaction; return the peer's ``reject`` if one comes within
        ``wait`` seconds, else None (BSV answers a refused transaction with a
        reject; silence is the only sign of acceptance the protocol gives)."""
        self._require_high_level("broadcast_transaction")
        broadcast = self.requests.expect_reject(sha256d(bytes(raw_tx)))
        try:
            await self.send_message(msgs.Tx(bytes(raw_tx)))
            await asyncio.wait({broadcast.future}, timeout=wait)
            return broadcast.future.result() if broadcast.future.done() else None
        finally:
            self.requests.forget_broadcast(broadcast)

    async def misbehaving(self, reason: str, error: PeerpoolError) -> None:
        """The peer sent something that proves it broken or hostile (a header
        failing proof of work, say): ban it in the peer store and drop it."""
        log.warning("%s: misbehaving (%s): %s", self, reason, error)
        self._ban_reason = reason
        await self._abort(error)

    def _require_high_level(self, what: str) -> None:
        if self.mode is not Mode.HIGH_LEVEL:
            raise ModeError(f"{what} needs Mode.HIGH_LEVEL; this client is {self.mode.name}")

    async def _wait(self, future: asyncio.Future[T], timeout: float | None, what: str) -> T:
        """Wait for an answer until a deadline ``timeout`` from now, extended
        only while a message is in flight (the answer may be queued behind it,
        and the minimum rate bounds how long it takes) or a handler of ours is
        busy. A missed deadline ends the connection (a failure in the store)."""
        limit = self.request_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        closed = self._closed
        if closed is None:
            raise PeerDisconnectedError(f"{self}: not connected")
        waitables: set[asyncio.Future[Any]] = {future, closed}
        deadline = loop.time() + limit
        while True:
            left = max(deadline - loop.time(), 0.0)
            done, _ = await asyncio.wait(waitables, timeout=left, return_when="FIRST_COMPLETED")
            if future in done:
                return future.result()
            if closed in done:
                raise self._closed_error(f"waiting for {what}")
            if loop.time() < deadline:
                continue
            if self._peer_active(loop.time(), limit):
                deadline = loop.time() + min(limit, self._stall.window)
                continue
            error = PeerTimeoutError(f"{self}: no {what} within {limit:g} s")
            await self._abort(error)
            raise error

    def _peer_active(self, now: float, window: float) -> bool:
        """A handler of ours is running, or a message is in flight and its
        bytes came within ``window`` (or a handler of ours held them up until
        then). A drip is the minimum rate's business (the reader drops it);
        complete small messages do not count."""
        return self._busy or (self.protocol.in_message and now - self._last_activity < window)

    def _end_error(self) -> BaseException:
        closed = self._closed
        cause = closed.exception() if closed is not None and closed.done() else None
        return cause or PeerDisconnectedError(f"{self}: the connection was closed")

    def _closed_error(self, doing: str) -> PeerDisconnectedError:
        closed = self._closed
        cause = closed.exception() if closed is not None and closed.done() else None
        error = PeerDisconnectedError(f"{self}: connection closed while {doing}")
        error.__cause__ = cause
        return error

    # --- keepalive ---------------------------------------------------------------------

    async def _keepalive(self) -> None:
        await keep_alive(self)

    # --- closing -----------------------------------------------------------------------

    def _record_end(self, error: BaseException | None) -> None:
        """Tell the peer store how the connection ended, once per connection
        (the verdicts: :mod:`peerpool.bitcoin.peer_verdict`). A store that
        cannot be written is logged: the connection is over anyway."""
        if self.peer_store is None:
            return
        try:
            record_end(
                self.peer_store,
                self.peer,
                error,
                ban_reason=self._ban_reason,
                handshake_succeeded=self._handshake_succeeded(),
            )
        except PeerStoreError as exc:
            log.error("%s: the end of the connection was not recorded: %s", self, exc)

    def _handshake_succeeded(self) -> bool:
        handshake = self._handshake
        return handshake is not None and handshake.done() and handshake.exception() is None

    def _finish(self, error: BaseException | None) -> None:
        self.protocol.release_budget()  # a message cut off with the connection
        closed = self._closed
        if closed is not None and not closed.done():
            self._record_end(error)
            if error is None:
                closed.set_result(None)
            else:
                closed.set_exception(error)
                closed.exception()  # retrieved: nobody may be waiting
        handshake = self._handshake
        if handshake is not None and not handshake.done():
            handshake.set_exception(error or PeerDisconnectedError(f"{self}: closed"))
            handshake.exception()
        self.requests.fail_all(
            error
            if isinstance(error, PeerpoolError)
            else PeerDisconnectedError(f"{self}: the connection is closed")
        )

    async def _abort(self, error: BaseException | None) -> None:
        """End the connection with ``error`` as the reason (None: we closed it)."""
        self._finish(error)
        # a handler may close its own connection: the reader task is not
        # cancelled under it, it stops by itself at the end of the stream
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        self._tasks = [t for t in self._tasks if t is current]
        for task in tasks:
            task.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5.0)
        while tasks:  # cancel again any task that swallowed the first cancellation
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            tasks = list(pending)
            for task in tasks:
                task.cancel()
