"""MultiDirectoryClient: the taker's view over all its directories and makers.

On top of :class:`DirectoryClientPool` it adds what a coinjoin needs:

* the orderbook from every directory at once, deduplicated by (counterparty, oid);
* nick tracking: a maker is gone only when every directory that knew it says
  so (or went away itself); then ``on_nick_leave(nick)`` fires;
* channels: ``"direct"`` (our own connection to the maker's onion, in the
  ``peer`` isolation category, so a directory cannot link it to our directory
  circuits) or ``"directory:host:port"``. A session binds a maker to one
  channel and every message of the session goes through it
  (``force_channel``), because makers reject a session that hops channels;
* :meth:`wait_for_responses`, which listens on every directory and every direct
  connection, keeps only correctly signed messages from the nicks asked,
  drops the copies that arrive through several directories, counts several
  ``!sig`` per maker, and reports ``!error`` as an error entry.

**Compatibility surface.** A taker written against joinmarket-ng's
``taker.multi_directory.MultiDirectoryClient`` finds the names it calls, with
the same meaning, thin over the API above: the ``neutrino_compat``
constructor option (advertises the ``neutrino_compat`` handshake feature),
:meth:`connect_all`, :meth:`is_nick_active`, :meth:`sync_nicks_with_peerlist`,
:meth:`send_privmsg` (returns the channel used) and the single-maker
:meth:`wait_for_response`. These names are kept stable for that purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from peerpool.errors import DirectoryConnectionError, PeerpoolError
from peerpool.joinmarket.client import DirectoryClient, Message
from peerpool.joinmarket.offers import Offer
from peerpool.joinmarket.pool import DirectoryClientPool
from peerpool.joinmarket.protocol import PrivateMessage
from peerpool.net import Address

log = logging.getLogger(__name__)

DIRECT = "direct"
FEATURE_NEUTRINO_COMPAT = "neutrino_compat"  # joinmarket-ng: the taker can use neutrino makers
DIRECTORY_PREFIX = "directory:"
MAX_DIRECT = 64  # direct connections kept open at once (one per maker of a round)
MAX_SEEN = 50_000  # message fingerprints remembered for deduplication
MAX_INBOX = 1_000  # private messages kept for wait_for_response until taken


def _key(message: PrivateMessage) -> tuple[str, str, str]:
    return (message.from_nick, message.command, message.data)


@dataclass
class Responses:
    """What one maker answered in :meth:`MultiDirectoryClient.wait_for_responses`."""

    messages: list[PrivateMessage] = field(default_factory=list)
    error: str | None = None
    error_message: PrivateMessage | None = None  # the signed !error itself

    @property
    def failed(self) -> bool:
        return self.error is not None


class MultiDirectoryClient(DirectoryClientPool):
    """The taker's client: all its directories, its makers, and a channel per coinjoin session.

    See the module docstring for what it adds to
    :class:`~peerpool.joinmarket.DirectoryClientPool`. Use it as an async
    context manager (connects, keeps the connections up, closes them at the end).

    Args:
        addresses: the directories, ``host:port``.
        network: the JoinMarket network name.
        on_nick_leave: called with a maker's nick once no directory has it any more.
        direct_timeout: seconds to try a direct connection to a maker's onion.
        neutrino_compat: advertise joinmarket-ng's ``neutrino_compat`` feature.
        **options: passed on to :class:`~peerpool.joinmarket.DirectoryClientPool`.

    Raises:
        peerpool.errors.AddressError: a directory address cannot be parsed.
    """

    def __init__(
        self,
        addresses: Iterable[str | Address],
        network: str,
        *,
        on_nick_leave: Callable[[str], None] | None = None,
        direct_timeout: float = 5.0,
        neutrino_compat: bool = False,
        **options: Any,
    ) -> None:
        if neutrino_compat:
            client_options = dict(options.pop("client_options", None) or {})
            features = frozenset(client_options.get("extra_features", frozenset()))
            client_options["extra_features"] = features | {FEATURE_NEUTRINO_COMPAT}
            options["client_options"] = client_options
        self.neutrino_compat = neutrino_compat
        super().__init__(addresses, network, **options)
        self.on_nick_leave = on_nick_leave
        self.direct_timeout = direct_timeout
        self.direct: dict[str, DirectoryClient] = {}  # maker nick -> our connection to it
        self.sessions: dict[str, str] = {}  # maker nick -> bound channel
        self.seen_on: dict[str, set[str]] = {}  # maker nick -> directories that relayed it
        self.leave_listeners.append(self._directory_says_left)
        self.disconnected_callbacks.append(self._directory_lost)
        self.listeners.append(self._note_route)
        # for wait_for_response: answers kept until taken (bounded)
        self._inbox: OrderedDict[tuple[str, str, str], PrivateMessage] = OrderedDict()
        self._taken: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._arrived = asyncio.Event()
        self.listeners.append(self._keep)

    # --- nick tracking -----------------------------------------------------------

    def nick_present(self, nick: str) -> bool:
        """Whether any connected directory (or a direct connection) still has ``nick``."""
        if nick in self.direct and self.direct[nick].connected:
            return True
        return any(nick in c.peers for c in self.clients.values() if c.connected)

    def _gone(self, nick: str) -> None:
        self.seen_on.pop(nick, None)
        if self.sessions.pop(nick, None) is not None:
            log.info("maker %s left; its session is over", nick)
        if self.on_nick_leave is not None:
            try:
                self.on_nick_leave(nick)
            except Exception:
                log.exception("on_nick_leave(%s) failed", nick)

    def _directory_says_left(self, client: DirectoryClient, nick: str) -> None:
        self.seen_on.get(nick, set()).discard(client.node_id)
        if not self.nick_present(nick):
            self._gone(nick)

    def _directory_lost(self, client: DirectoryClient) -> None:
        for nick in list(client.peers):
            self.seen_on.get(nick, set()).discard(client.node_id)
            if not self.nick_present(nick):
                self._gone(nick)

    def _note_route(self, client: DirectoryClient, message: Message) -> None:
        if client.peer_nick is None and isinstance(message, PrivateMessage):
            routes = self.seen_on.setdefault(message.from_nick, set())
            if len(self.seen_on) <= MAX_SEEN:
                routes.add(client.node_id)

    # --- orderbook ---------------------------------------------------------------

    async def fetch_orderbook(self, *, quiet: float = 2.0, max_wait: float = 10.0) -> list[Offer]:
        """``!orderbook`` through every directory at once; the offers, deduplicated by
        (counterparty, oid). Also notes which directories relay each maker (the
        channels ``send_private`` can use).

        Raises:
            peerpool.errors.DirectoryConnectionError: no directory is connected.
        """
        collector = await self.collect_offers(quiet=quiet, max_wait=max_wait)
        for nick, nodes in collector.sources.items():
            self.seen_on.setdefault(nick, set()).update(nodes)
        return list(collector.offers.values())

    # --- channels and sessions --------------------------------------------------------

    def directory_channel(self, nick: str) -> str | None:
        """A connected directory through which ``nick`` was seen, as a channel name."""
        for node in sorted(self.seen_on.get(nick, ())):
            client = self.clients.get(node)
            if client is not None and client.connected:
                return DIRECTORY_PREFIX + node
        for node, client in self.clients.items():
            if client.connected and nick in client.peers:
                return DIRECTORY_PREFIX + node
        return None

    def maker_location(self, nick: str) -> str | None:
        """The onion ``host:port`` a connected directory lists for ``nick``, or None
        if the maker serves none we know of.
        """
        for client in self.clients.values():
            entry = client.peers.get(nick)
            if entry is not None and entry.reachable:
                return entry.location
        return None

    async def connect_direct(self, nick: str) -> DirectoryClient:
        """Open (or reuse) our own connection to the maker's onion."""
        existing = self.direct.get(nick)
        if existing is not None and existing.connected:
            return existing
        location = self.maker_location(nick)
        if location is None:
            raise DirectoryConnectionError(f"{nick} serves no onion we know of")
        if len(self.direct) >= MAX_DIRECT:
            raise DirectoryConnectionError(f"already {MAX_DIRECT} direct connections open")
        client = DirectoryClient(
            location,
            self.network,
            identity=self.identity,
            proxy=self.proxy,
            isolation=self.isolation,
            location=self.location,
            peer_nick=nick,
            connect_timeout=self.direct_timeout,
        )
        client.listeners.append(self._relay_message)
        await client.connect()
        self.direct[nick] = client
        asyncio.get_running_loop().create_task(self._watch_direct(nick, client))
        return client

    async def _watch_direct(self, nick: str, client: DirectoryClient) -> None:
        try:
            await client.wait_closed()
        except PeerpoolError as exc:
            log.info("direct connection to %s ended: %s", nick, exc)
        if self.direct.get(nick) is client:
            del self.direct[nick]

    async def start_session(self, nick: str, *, prefer_direct: bool = True) -> str:
        """Bind ``nick`` to one channel for a coinjoin session and return it.

        A live direct connection wins; otherwise, with ``prefer_direct``, one is
        tried for ``direct_timeout`` s when the maker serves an onion; otherwise
        (or on failure) a directory that relays the maker."""
        channel: str | None = None
        if prefer_direct:
            try:
                await self.connect_direct(nick)
                channel = DIRECT
            except PeerpoolError as exc:
                log.info("no direct connection to %s, relaying via a directory: %s", nick, exc)
        if channel is None:
            channel = self.directory_channel(nick)
        if channel is None:
            raise DirectoryConnectionError(f"no channel reaches {nick}")
        self.sessions[nick] = channel
        return channel

    def end_session(self, nick: str) -> None:
        """Forget the channel bound to ``nick``; the next message may take any channel."""
        self.sessions.pop(nick, None)

    async def send_private(
        self, nick: str, cmd: str, data: str, *, force_channel: str | None = None
    ) -> str:
        """Send through ``force_channel``, else the session's channel, else the best
        one now (direct if up, else a directory). Returns the channel used. A bound
        channel that is down raises rather than silently switching."""
        channel = force_channel or self.sessions.get(nick)
        if channel is None:
            live = self.direct.get(nick)
            channel = (
                DIRECT if live is not None and live.connected else self.directory_channel(nick)
            )
        if channel is None:
            raise DirectoryConnectionError(f"no channel reaches {nick}")
        client = self._channel_client(nick, channel)
        await client.send_private(nick, cmd, data)
        return channel

    def _channel_client(self, nick: str, channel: str) -> DirectoryClient:
        if channel == DIRECT:
            client = self.direct.get(nick)
        elif channel.startswith(DIRECTORY_PREFIX):
            client = self.clients.get(channel[len(DIRECTORY_PREFIX) :])
        else:
            raise DirectoryConnectionError(f"unknown channel {channel!r}")
        if client is None or not client.connected:
            raise DirectoryConnectionError(f"channel {channel} to {nick} is down")
        return client

    # --- collecting answers ----------------------------------------------------------

    async def wait_for_responses(
        self,
        nicks: Iterable[str],
        command: str,
        timeout: float,
        expected_counts: Mapping[str, int] | None = None,
    ) -> dict[str, Responses]:
        """Collect ``command`` answers from ``nicks`` through every channel.

        Returns when each nick has sent its expected count (default 1) or an
        ``!error``, or at ``timeout``; nicks that stayed silent have an empty
        entry. Messages are signature-checked by the clients already; copies of
        one message through several directories count once.
        """
        wanted = set(nicks)
        counts = {n: (expected_counts or {}).get(n, 1) for n in wanted}
        results = {n: Responses() for n in wanted}
        seen: set[tuple[str, str, str]] = set()
        done = asyncio.Event()

        def complete(nick: str) -> bool:
            r = results[nick]
            return r.failed or len(r.messages) >= counts[nick]

        def on_message(_: DirectoryClient, message: Message) -> None:
            if not isinstance(message, PrivateMessage) or message.from_nick not in wanted:
                return
            if message.command not in (command, "error"):
                return
            key = (message.from_nick, message.command, message.data)
            if key in seen or complete(message.from_nick):
                return  # a copy through another directory, or more than asked
            seen.add(key)
            if message.command == "error":
                results[message.from_nick].error = message.data
                results[message.from_nick].error_message = message
            else:
                results[message.from_nick].messages.append(message)
            if all(complete(n) for n in wanted):
                done.set()

        self.listeners.append(on_message)
        try:
            if wanted:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout)
        finally:
            self.listeners.remove(on_message)
        return results

    # --- joinmarket-ng compatibility surface ----------------------------------------

    async def connect_all(self, *, timeout: float | None = None) -> int:
        """Connect every configured directory at once; the number now connected."""
        await self.connect_all_parallel(timeout=timeout)
        return len(self.connected_clients())

    def is_nick_active(self, nick: str) -> bool:
        """Whether any connected directory (or our direct connection) still has ``nick``."""
        return self.nick_present(nick)

    def sync_nicks_with_peerlist(self, server: str, active_nicks: Iterable[str]) -> None:
        """Take a fresh peerlist of directory ``server`` (``host:port``) as the truth:
        nicks it knew and no longer lists have left it (and, if no other channel
        has them, left altogether: ``on_nick_leave`` fires)."""
        client = self.clients.get(server)
        if client is None:
            raise DirectoryConnectionError(f"no directory {server!r} in this pool")
        active = set(active_nicks)
        for nick in [n for n in client.peers if n not in active]:
            del client.peers[nick]
            self._directory_says_left(client, nick)

    async def send_privmsg(
        self,
        recipient: str,
        command: str,
        data: str,
        log_routing: bool = False,
        force_channel: str | None = None,
    ) -> str:
        """:meth:`send_private` under joinmarket-ng's name; returns the channel."""
        channel = await self.send_private(recipient, command, data, force_channel=force_channel)
        if log_routing:
            log.info("sent !%s to %s via %s", command, recipient, channel)
        return channel

    async def wait_for_response(
        self, from_nick: str, expected_command: str, timeout: float
    ) -> PrivateMessage | None:
        """The next ``expected_command`` (or ``!error``) from one maker, or None at
        ``timeout``; an ``!error`` is returned as the message it is.

        As in joinmarket-ng, an answer that arrived before the call (the maker
        was quick, or the taker was busy sending to others) is not lost: signed
        private messages are kept in a small inbox until one call takes them,
        and the copies of a taken message through other directories are not
        returned again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wanted = (expected_command, "error")
        while True:
            for message in self._inbox.values():
                if message.from_nick == from_nick and message.command in wanted:
                    self._take(message)
                    return message
            left = deadline - loop.time()
            if left <= 0:
                return None
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def _keep(self, client: DirectoryClient, message: Message) -> None:
        if not isinstance(message, PrivateMessage):
            return
        key = _key(message)
        if key in self._taken or key in self._inbox:
            return  # a copy through another directory
        self._inbox[key] = message
        if len(self._inbox) > MAX_INBOX:  # bounded: the oldest unclaimed answer goes
            self._inbox.popitem(last=False)
        self._arrived.set()

    def _take(self, message: PrivateMessage) -> None:
        key = _key(message)
        del self._inbox[key]
        self._taken[key] = None
        while len(self._taken) > MAX_INBOX:
            self._taken.popitem(last=False)

    async def close_all(self) -> list[tuple[str, BaseException]]:
        """Close the direct connections to makers and every directory connection;
        returns ``(directory, error)`` for each that had ended with an error.
        """
        direct = list(self.direct.values())
        self.direct.clear()
        await asyncio.gather(*(c.close() for c in direct), return_exceptions=True)
        return await super().close_all()
