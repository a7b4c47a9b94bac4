"""DirectoryClientPool: a maker's or taker's connections to all its directories.

A :class:`~peerpool.pool.ClientPool` of :class:`DirectoryClient` s sharing one
nick identity, one Tor proxy and one stream isolation (every directory
connection uses the ``directory`` category). The pool's hooks wire each new
client's messages and departures to the pool's own listeners, so callers
subscribe once and hear every directory, whichever reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from peerpool.errors import DirectoryConnectionError, PeerpoolError
from peerpool.joinmarket.client import (
    DEFAULT_PORT,
    DirectoryClient,
    LeaveListener,
    Listener,
    OfferCollector,
)
from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.messages import NOT_SERVING_ONION
from peerpool.joinmarket.offers import ORDERBOOK, Offer
from peerpool.joinmarket.protocol import NickAuthMode
from peerpool.net import Address, ProxyConfig, StreamIsolation
from peerpool.pool import ClientPool, ConnectionInfo

log = logging.getLogger(__name__)


class DirectoryClientPool(ClientPool[DirectoryClient]):
    """Connections to all of a maker's or taker's directories, under one nick.

    Every client shares the pool's identity, proxy and stream isolation; each
    new client's messages reach the pool's ``listeners`` (called with
    ``(client, message)``) and its departures the ``leave_listeners``, so a
    caller subscribes once and hears every directory, whichever reconnects.
    ``connect_all_with_retry`` and ``start_reconnect_task`` (from
    :class:`~peerpool.pool.ClientPool`) bring the connections up.

    Args:
        addresses: the directories, ``host:port`` (``.onion`` ones need ``proxy``).
        network: the JoinMarket network name (``"mainnet"``, ``"testnet"``, ``"regtest"``, ...).
        identity: the nick key (a fresh one by default).
        proxy: Tor's SOCKS port, for ``.onion`` directories.
        isolation: the stream isolation (its ``directory`` category is used; one
            is made when there is a proxy).
        location: our onion location as announced (``NOT-SERVING-ONION`` by default).
        nick_auth: whether to prove our nick to directories that ask (JMP-0005).
        directory_ids: the directory id of each directory (``host:port`` -> id),
            for nick authentication.
        client_options: passed on to each :class:`~peerpool.joinmarket.DirectoryClient`.
        **pool_options: passed on to :class:`~peerpool.pool.ClientPool`
            (``connect_timeout``, ...).

    Raises:
        peerpool.errors.AddressError: a directory address cannot be parsed.
    """

    def __init__(
        self,
        addresses: Iterable[str | Address],
        network: str,
        *,
        identity: NickIdentity | None = None,
        proxy: ProxyConfig | None = None,
        isolation: StreamIsolation | None = None,
        location: str = NOT_SERVING_ONION,
        nick_auth: NickAuthMode = NickAuthMode.PREFER,
        directory_ids: Mapping[str, str] | None = None,
        client_options: Mapping[str, Any] | None = None,
        **pool_options: Any,
    ) -> None:
        pool_options.setdefault("default_port", DEFAULT_PORT)
        super().__init__(addresses, **pool_options)
        self.network = network
        self.identity = identity or NickIdentity()
        self.proxy = proxy
        # one isolation for the pool: all directory streams share the category's
        # credentials, direct peer connections (MultiDirectoryClient) get others
        self.isolation = isolation or (StreamIsolation() if proxy is not None else None)
        self.location = location
        self.nick_auth = nick_auth
        self.directory_ids = dict(directory_ids or {})
        self.client_options = dict(client_options or {})
        self.listeners: list[Listener] = []
        self.leave_listeners: list[LeaveListener] = []
        self.connected_callbacks: list[Callable[[DirectoryClient], None]] = []
        self.disconnected_callbacks: list[Callable[[DirectoryClient], None]] = []

    @property
    def nick(self) -> str:
        """The pool's nick (every directory connection uses it)."""
        return self.identity.nick

    # --- ClientPool hooks --------------------------------------------------------

    def client_kwargs(self, conn: ConnectionInfo) -> dict[str, Any]:
        """The pool hook: the arguments of the ``DirectoryClient`` for the connection ``conn``."""
        return {
            "address": conn.address,
            "network": self.network,
            "identity": self.identity,
            "proxy": self.proxy,
            "isolation": self.isolation,
            "location": self.location,
            "nick_auth": self.nick_auth,
            "directory_id": self.directory_ids.get(conn.node_id),
            **self.client_options,
        }

    def create_client(self, conn: ConnectionInfo) -> DirectoryClient:
        """The pool hook: a ``DirectoryClient`` whose messages and departures go to the pool's listeners."""
        client = DirectoryClient(**self.client_kwargs(conn))
        # listeners attach before connect() so nothing said right after the
        # handshake is missed
        client.listeners.append(self._relay_message)
        client.leave_listeners.append(self._relay_leave)
        return client

    async def on_connected(self, conn: ConnectionInfo, client: DirectoryClient) -> None:
        """The pool hook: calls each of ``connected_callbacks`` with the client."""
        for callback in list(self.connected_callbacks):
            callback(client)

    async def on_disconnected(
        self, conn: ConnectionInfo, client: DirectoryClient, cause: BaseException | None
    ) -> None:
        """The pool hook: calls each of ``disconnected_callbacks`` with the client."""
        for callback in list(self.disconnected_callbacks):
            callback(client)

    def _relay_message(self, client: DirectoryClient, message: Any) -> None:
        for listener in list(self.listeners):
            listener(client, message)

    def _relay_leave(self, client: DirectoryClient, nick: str) -> None:
        for listener in list(self.leave_listeners):
            listener(client, nick)

    # --- broadcast helpers -------------------------------------------------------

    def connected_clients(self) -> list[DirectoryClient]:
        """The clients whose directory connection is up now."""
        return [c for c in self.clients.values() if c.connected]

    async def send_public_all(self, cmd: str, args: str = "") -> int:
        """Send a public message through every connected directory at once;
        returns how many took it (a failing one is logged, not raised)."""
        clients = self.connected_clients()
        results = await asyncio.gather(
            *(c.send_public(cmd, args) for c in clients), return_exceptions=True
        )
        sent = 0
        for client, result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                log.info("%s: public message not sent: %s", client.node_id, result)
            else:
                sent += 1
        return sent

    async def fetch_orderbook(self, *, quiet: float = 2.0, max_wait: float = 10.0) -> list[Offer]:
        """``!orderbook`` through every directory at once; the offers that come back
        through any of them, deduplicated by (counterparty, oid). A directory that
        stops answering costs nothing beyond ``max_wait``."""
        collector = await self.collect_offers(quiet=quiet, max_wait=max_wait)
        return list(collector.offers.values())

    async def collect_offers(self, *, quiet: float = 2.0, max_wait: float = 10.0) -> OfferCollector:
        """Send ``!orderbook`` through every directory and gather the answers: the
        offers (deduplicated by counterparty and oid) and which directories relayed
        each maker. Returns once no offer came for ``quiet`` seconds, or after ``max_wait``.

        Raises:
            peerpool.errors.DirectoryConnectionError: no directory is connected.
        """
        collector = OfferCollector()
        self.listeners.append(collector.on_message)
        try:
            if await self.send_public_all(ORDERBOOK) == 0:
                raise DirectoryConnectionError("no directory connected to ask for the orderbook")
            await collector.wait(quiet, max_wait)
        finally:
            self.listeners.remove(collector.on_message)
        return collector

    async def close_all(self) -> list[tuple[str, BaseException]]:
        """Close every connection and stop reconnecting; returns ``(directory, error)``
        for each connection that had ended with an error (unexpected ones are logged).
        """
        errors = await super().close_all()
        for node, error in errors:
            if not isinstance(error, PeerpoolError):
                log.warning("%s: unexpected error while closing: %r", node, error)
        return errors
