"""ClientPool: the clients of a list of configured servers, kept connected.

Bookkeeping plus hooks. The pool parses the configured addresses once (bad
ones are reported together at construction), keys everything by canonical node
id (``"host:port"``), dials concurrently, learns of dead connections from the
client's ``wait_closed()`` and drops them from :attr:`ClientPool.clients` at
once, and retries with one :class:`~peerpool.net.Backoff` policy. What a client
is and does stays outside: see :mod:`peerpool.pool.contract` for the contract
and override the hooks (``client_kwargs``/``create_client``, ``on_dialing``,
``on_dial_failed``, ``on_connected``, ``on_disconnected``) to specialise it, as
``DirectoryClientPool`` and the Bitcoin ``ClientManager`` do.

Compared with joinmarket-ng's ``DirectoryClientPool``: the retry loop dials all
missing servers at once and stops at its deadline even mid-attempt; a client
whose connection dies leaves ``clients`` and fires ``on_disconnected``;
unparseable addresses are an error (or, with ``strict=False``, one warning) at
construction instead of a debug line at every pass.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, Self, TypeVar

from peerpool.errors import (
    AddressError,
    DialError,
    DialTimeoutError,
    InputError,
    PeerpoolError,
    PoolClosedError,
    PoolError,
    UnknownNodeError,
)
from peerpool.net.address import Address, parse_address
from peerpool.net.backoff import Backoff
from peerpool.pool.contract import ConnectionId, ConnectionInfo, ConnectOutcome, PoolClient
from peerpool.pool.retry import connect_with_retry, reconnect_forever

log = logging.getLogger(__name__)

C = TypeVar("C", bound=PoolClient)

DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_CLOSE_TIMEOUT = 10.0
# Between reconnect passes: quick at first (a restarted server is back in
# seconds), then at most once a minute so a long outage costs little.
DEFAULT_RECONNECT_BACKOFF = Backoff(initial=2.0, multiplier=2.0, cap=60.0, jitter=0.2)


class ClientPool(Generic[C]):
    """Clients for configured servers, keyed by canonical node id."""

    def __init__(
        self,
        addresses: Iterable[str | Address],
        *,
        client_factory: Callable[..., C] | None = None,
        default_port: int | None = None,
        strict: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(addresses, (str, Address)):
            addresses = [addresses]  # one address, not a string of characters
        for name, value in (("connect_timeout", connect_timeout), ("close_timeout", close_timeout)):
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise InputError(f"{name} must be a positive number of seconds, not {value!r}")
        self.default_port = default_port
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.rng = rng or random.Random()
        self._client_factory = client_factory
        self.addresses: dict[str, Address] = {}
        self.rejected: list[tuple[str, AddressError]] = []
        for text in addresses:
            try:
                address = parse_address(text, default_port)
            except AddressError as exc:
                self.rejected.append((repr(text), exc))
                continue
            self.addresses.setdefault(address.node_id, address)
        if self.rejected:
            listing = "; ".join(str(exc) for _, exc in self.rejected)
            if strict:
                raise AddressError(f"{len(self.rejected)} unusable address(es): {listing}")
            log.warning("skipping %d unusable address(es): %s", len(self.rejected), listing)
        self.clients: dict[str, C] = {}
        self._conns: dict[str, ConnectionInfo] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, asyncio.Task[C]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()  # set on every connect and disconnect
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closed = False

    # --- hooks for subclasses ------------------------------------------------------

    def client_kwargs(self, conn: ConnectionInfo) -> dict[str, Any]:
        """Constructor arguments for the client of ``conn`` (used by ``create_client``)."""
        return {"address": conn.address}

    def create_client(self, conn: ConnectionInfo) -> C:
        """Build (not connect) the client for one attempt."""
        if self._client_factory is None:
            raise PoolError(
                f"{type(self).__name__}: give a client_factory or override create_client"
            )
        return self._client_factory(**self.client_kwargs(conn))

    async def on_dialing(self, conn: ConnectionInfo) -> None:
        """An attempt starts (its id is new)."""

    async def on_dial_failed(self, conn: ConnectionInfo, error: PeerpoolError) -> None:
        """An attempt failed or was abandoned; the client, if built, is already closed."""

    async def on_connected(self, conn: ConnectionInfo, client: C) -> None:
        """A client is connected and listed in ``clients``."""

    async def on_disconnected(
        self, conn: ConnectionInfo, client: C, cause: BaseException | None
    ) -> None:
        """A client left ``clients``: its connection died (``cause`` if known) or we closed it."""

    # --- queries ---------------------------------------------------------------

    @property
    def connections(self) -> Mapping[str, ConnectionInfo]:
        """The connection (id and address) of each connected node."""
        return dict(self._conns)

    @property
    def closed(self) -> bool:
        """True once ``close_all`` was called: the pool makes no more connections."""
        return self._closed

    def list_disconnected(self) -> list[str]:
        """Configured node ids without a connected client, in configuration order."""
        return [n for n in self.addresses if n not in self.clients]

    def add_address(self, address: str | Address) -> str:
        """Configure one more server; return its node id (the same if already there)."""
        parsed = parse_address(address, self.default_port)
        self.addresses.setdefault(parsed.node_id, parsed)
        return parsed.node_id

    async def remove_address(self, node_id: str) -> None:
        """Forget a server: abandon its dial and close its client."""
        node = self._node(node_id)
        task = self._pending.get(node)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self.disconnect(node)
        del self.addresses[node]

    # --- connecting ------------------------------------------------------------

    async def connect_one(self, node_id: str | Address, *, timeout: float | None = None) -> C:
        """Connect one configured server (or return its client if connected).

        Raises a DialError (or the client's own PeerpoolError) on failure. A
        second caller for a node being dialed waits for the same attempt.
        """
        node = self._node(node_id)
        if node in self.clients:
            return self.clients[node]
        task, _ = self._start_dial(node, timeout)
        return await self._await_dial(node, task)

    async def connect_all_parallel(self, *, timeout: float | None = None) -> ConnectOutcome:
        """One concurrent attempt at every disconnected server."""
        outcome = ConnectOutcome()
        started: dict[str, asyncio.Task[C]] = {}
        try:
            attempts = {n: self._start_dial(n, timeout) for n in self.list_disconnected()}
            started = {n: t for n, (t, new) in attempts.items() if new}
            if attempts:
                await asyncio.wait([t for t, _ in attempts.values()])
        finally:
            for task in started.values():
                task.cancel()  # no-op unless we were cancelled mid-wait
        for node, (task, _) in attempts.items():
            if not task.cancelled() and task.exception() is None:
                outcome.new.append(node)
            else:
                outcome.errors[node] = _failure(node, task)
        outcome.connected = list(self.clients)
        return outcome

    async def reconnect_disconnected(self, *, timeout: float | None = None) -> ConnectOutcome:
        """One concurrent attempt at every configured server that is not connected."""
        return await self.connect_all_parallel(timeout=timeout)

    async def connect_all_with_retry(
        self, timeout: float, backoff: Backoff | None = None, *, min_connected: int | None = None
    ) -> ConnectOutcome:
        """Dial every missing server at once, retrying each under ``backoff``.

        Returns as soon as ``min_connected`` servers (default: all) are
        connected, when every server has given up, or at ``timeout`` seconds,
        even in the middle of attempts: dials still running then are abandoned
        (the periodic reconnect task, if started, carries on).
        """
        self._check_open()
        return await connect_with_retry(self, timeout, backoff or Backoff(), min_connected)

    def start_reconnect_task(self, backoff: Backoff | None = None) -> asyncio.Task[None]:
        """Keep reconnecting dropped servers in the background until ``close_all``.

        It wakes when a client disconnects, waits ``backoff.initial``, then
        makes concurrent passes spaced by the backoff until all are back.
        """
        self._check_open()
        if self._reconnect_task is None or self._reconnect_task.done():
            policy = backoff or DEFAULT_RECONNECT_BACKOFF
            self._reconnect_task = asyncio.create_task(reconnect_forever(self, policy))
        return self._reconnect_task

    # --- closing ---------------------------------------------------------------

    async def disconnect(self, node_id: str) -> None:
        """Close one node's client (if connected) and fire ``on_disconnected``."""
        node = self._node(node_id)
        conn = self._conns.pop(node, None)
        if conn is None:
            return
        client = self.clients.pop(node)
        watcher = self._watchers.pop(node, None)
        if watcher is not None:
            watcher.cancel()
        await self._retire(conn, client, None)
        self._changed.set()

    async def close_all(self) -> list[tuple[str, BaseException]]:
        """Close every client and stop all background work; the pool stays closed.

        An error (or hang, bounded by ``close_timeout``) in one client's
        ``close`` or in a hook does not stop the others; the errors are
        logged and returned as ``(node_id, error)`` pairs.
        """
        self._closed = True
        background = [t for t in (self._reconnect_task, *self._pending.values()) if t]
        background += list(self._watchers.values())
        for task in background:
            task.cancel()
        if background:
            await asyncio.wait(background)
        pairs = [(conn, self.clients[node]) for node, conn in self._conns.items()]
        self.clients.clear()
        self._conns.clear()
        self._watchers.clear()
        results = await asyncio.gather(
            *(self._retire(conn, client, None) for conn, client in pairs), return_exceptions=True
        )
        errors: list[tuple[str, BaseException]] = []
        for (conn, _), result in zip(pairs, results, strict=True):
            if isinstance(result, BaseException):
                errors.append((conn.node_id, result))
            else:
                errors.extend((conn.node_id, e) for e in result)
        return errors

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close_all()

    # --- internals -------------------------------------------------------------

    def _node(self, node_id: str | Address) -> str:
        if isinstance(node_id, str) and node_id in self.addresses:
            return node_id
        try:
            node = parse_address(node_id, self.default_port).node_id
        except AddressError:
            node = str(node_id)
        if node not in self.addresses:
            raise UnknownNodeError(f"{node!r} is not a configured server of this pool")
        return node

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError("the pool is closed")

    def _start_dial(self, node: str, timeout: float | None) -> tuple[asyncio.Task[C], bool]:
        """The running attempt for ``node``, or a new one (second item: it is new)."""
        self._check_open()
        task = self._pending.get(node)
        if task is not None:
            return task, False
        task = asyncio.create_task(self._dial(self.addresses[node], timeout))
        self._pending[node] = task

        def forget(done: asyncio.Task[C]) -> None:
            if self._pending.get(node) is done:
                del self._pending[node]
            if not done.cancelled():
                done.exception()  # retrieved here: waiters may all have gone

        task.add_done_callback(forget)
        return task, True

    async def _await_dial(self, node: str, task: asyncio.Task[C]) -> C:
        # asyncio.wait, not await: cancelling this waiter must not cancel an
        # attempt that other callers share
        await asyncio.wait({task})
        if task.cancelled():
            raise DialError(f"{node}: the attempt was abandoned")
        return task.result()

    async def _dial(self, address: Address, timeout: float | None) -> C:
        conn = ConnectionInfo(ConnectionId(next(self._ids)), address)
        limit = self.connect_timeout if timeout is None else min(timeout, self.connect_timeout)
        await self._hook("on_dialing", conn, self.on_dialing(conn))
        client: C | None = None
        try:
            client = self.create_client(conn)
            await asyncio.wait_for(client.connect(), max(limit, 0.0))
        except asyncio.CancelledError:
            # every on_dialing gets exactly one on_connected or on_dial_failed
            if client is not None:
                await self._close_client(conn, client)
            abandoned = DialError(f"{conn.node_id}: the attempt was abandoned")
            await self._hook("on_dial_failed", conn, self.on_dial_failed(conn, abandoned))
            raise
        except Exception as exc:
            if client is not None:
                await self._close_client(conn, client)
            error = _as_dial_error(conn, exc, limit)
            log.info("%s: connect failed: %s", conn, error)
            await self._hook("on_dial_failed", conn, self.on_dial_failed(conn, error))
            raise error from exc
        if self._closed:  # close_all ran while we were connecting
            await self._close_client(conn, client)
            closed = PoolClosedError(f"{conn.node_id}: the pool was closed while connecting")
            await self._hook("on_dial_failed", conn, self.on_dial_failed(conn, closed))
            raise closed
        self.clients[address.node_id] = client
        self._conns[address.node_id] = conn
        self._watchers[address.node_id] = asyncio.create_task(self._watch(conn, client))
        log.info("%s: connected", conn)
        self._changed.set()
        await self._hook("on_connected", conn, self.on_connected(conn, client))
        return client

    async def _watch(self, conn: ConnectionInfo, client: C) -> None:
        cause: BaseException | None = None
        try:
            await client.wait_closed()
        except Exception as exc:  # the client says why its connection ended
            cause = exc
        if self._conns.get(conn.node_id) is not conn:
            return  # already retired by disconnect/close_all
        del self._conns[conn.node_id]
        del self.clients[conn.node_id]
        self._watchers.pop(conn.node_id, None)
        log.info("%s: connection ended%s", conn, f": {cause}" if cause else "")
        await self._retire(conn, client, cause)
        self._changed.set()

    async def _retire(
        self, conn: ConnectionInfo, client: C, cause: BaseException | None
    ) -> list[BaseException]:
        """Close a client that has left ``clients`` and fire the hook; collect errors."""
        errors = [e for e in [await self._close_client(conn, client)] if e is not None]
        hook_error = await self._hook(
            "on_disconnected", conn, self.on_disconnected(conn, client, cause)
        )
        if hook_error is not None:
            errors.append(hook_error)
        return errors

    async def _close_client(self, conn: ConnectionInfo, client: C) -> BaseException | None:
        try:
            await asyncio.wait_for(client.close(), self.close_timeout)
        except Exception as exc:
            log.warning("%s: error while closing: %r", conn, exc)
            return exc
        return None

    async def _hook(
        self, name: str, conn: ConnectionInfo, call: Awaitable[None]
    ) -> BaseException | None:
        try:
            await call
        except Exception as exc:
            log.exception("%s: hook %s failed", conn, name)
            return exc
        return None


def _as_dial_error(conn: ConnectionInfo, exc: Exception, limit: float) -> PeerpoolError:
    if isinstance(exc, PeerpoolError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return DialTimeoutError(f"{conn.node_id}: not connected within {limit:g} s")
    if not isinstance(exc, OSError):  # a bug in the client more likely than a network fault
        log.warning("%s: client raised %r while connecting", conn, exc, exc_info=exc)
    return DialError(f"{conn.node_id}: {type(exc).__name__}: {exc}")


def _failure(node: str, task: asyncio.Task[Any]) -> BaseException:
    if task.cancelled():
        return DialError(f"{node}: the attempt was abandoned")
    error = task.exception()
    return error if error is not None else DialError(f"{node}: no error recorded")
