"""The directory node's logic, without I/O: connections in, bytes to writers out.

:class:`DirectoryCore` owns the peer table. The asyncio driver
(:mod:`peerpool.joinmarket.server`) hands it each connection's transport (any
object with ``write``, ``close``, ``abort``, ``is_closing`` and
``get_write_buffer_size``) and the bytes read; tests hand it fake writers. It
validates handshakes and runs JMP-0005 nick auth
(:mod:`~peerpool.joinmarket.server_admission`), relays public messages to
every handshaken peer and private messages to their recipient (only when
``from`` is the sender's own nick, with the sender's onion location forwarded
to the recipient), serves peerlists, announces departures, keeps peers alive
with pings or ``!orderbook`` probes, and limits line size, message rate and
queued output (:mod:`~peerpool.joinmarket.server_output`).

Output is gathered and written by :meth:`flush`. With ``schedule=None`` every
call that may produce output flushes before it returns (what unit tests want);
the asyncio driver passes ``loop.call_soon`` so that all reads and departures
of one event-loop turn share one flush.

Nothing a peer sends can make the core raise: every malformed input is a
typed :class:`~peerpool.errors.JoinMarketProtocolError` inside, counted in
:class:`ServerStats` and answered by closing the connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from peerpool.errors import JoinMarketProtocolError
from peerpool.joinmarket import server_admission as admission
from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.messages import (
    FEATURE_NICK_AUTH,
    FEATURE_PEERLIST_FEATURES,
    FEATURE_PING,
    NOT_SERVING_ONION,
    public_line,
)
from peerpool.joinmarket.nickauth import validate_directory_id
from peerpool.joinmarket.offers import ORDERBOOK
from peerpool.joinmarket.peerlist import encode_peerlist
from peerpool.joinmarket.server_output import Output
from peerpool.joinmarket.server_state import (
    Conn,
    PeerState,
    ServerConfig,
    ServerStats,
    Writer,
)
from peerpool.joinmarket.wire import MessageType, decode_frame, encode_frame, is_unicode

log = logging.getLogger(__name__)

_PRIVMSG = int(MessageType.PRIVMSG)
_PUBMSG = int(MessageType.PUBMSG)
_PING_FRAME = encode_frame(MessageType.PING, "")
_PONG_FRAME = encode_frame(MessageType.PONG, "")
# nick-auth messages are only valid while authenticating; after, they disconnect
_AUTH_TYPES = frozenset(
    {MessageType.NICK_AUTH_CHALLENGE, MessageType.NICK_AUTH_PROOF, MessageType.NICK_AUTH_RESULT}
)

Schedule = Callable[[Callable[[], None]], object]
ScheduleLater = Callable[[float, Callable[[], None]], object]
CloseListener = Callable[[Conn, str], None]


class DirectoryCore:
    def __init__(
        self,
        config: ServerConfig,
        identity: NickIdentity | None = None,
        clock: Callable[[], float] = time.monotonic,
        schedule: Schedule | None = None,
    ) -> None:
        self.config = config
        self.identity = identity or NickIdentity()
        self.clock = clock
        self.stats = ServerStats()
        self.conns: set[Conn] = set()
        self.by_nick: dict[str, Conn] = {}  # who holds each nick (ready or authenticating)
        self.ready: list[Conn] = []  # broadcast targets, kept as a list for speed
        self.output = Output(config, self.stats, self.ready, self.conns, self._cut)
        self.close_listeners: list[CloseListener] = []  # (conn, reason) for the log summary
        self._schedule = schedule
        self._schedule_later: ScheduleLater | None = None
        self._flush_scheduled = False
        self._last_flush = -1e9
        self._busy = False  # inside feed/tick/flush: output waits for the end of the call
        self._peerlist_cache: dict[bool, list[bytes]] = {}
        self.features = frozenset({FEATURE_PEERLIST_FEATURES, FEATURE_PING})
        self.set_directory_id(config.directory_id)

    def set_schedule(
        self, schedule: Schedule | None, schedule_later: ScheduleLater | None = None
    ) -> None:
        """How flushes are deferred: ``loop.call_soon`` (and ``loop.call_later`` for
        ``flush_interval``) in the driver, ``None`` to flush before every call returns."""
        self._schedule = schedule
        self._schedule_later = schedule_later

    def set_directory_id(self, directory_id: str | None) -> None:
        """Turn nick auth on (or off, with ``None``) for handshakes from now on.

        An onion directory learns its identity (``<onion>:port``) only once the
        service is published, which needs the port this server bound."""
        if directory_id is not None:
            validate_directory_id(directory_id)
            self.features = self.features | {FEATURE_NICK_AUTH}
        else:
            self.features = self.features - {FEATURE_NICK_AUTH}
        self.config.directory_id = directory_id

    # --- connection lifecycle ---------------------------------------------------

    def open(self, writer: Writer, addr: str = "") -> Conn | None:
        """Register a new connection; ``None`` (and the writer closed) when full."""
        if len(self.conns) >= self.config.max_peers:
            writer.abort()
            self.stats.rejected += 1
            return None
        conn = Conn(writer, addr, self.clock(), self.config.max_line, self.config.burst)
        self.conns.add(conn)
        return conn

    def lost(self, conn: Conn) -> None:
        """The transport is gone; forget the peer and tell the others it left
        (in the next flush, together with everyone else who left meanwhile)."""
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self.output.forget(conn)
        was_ready = conn.state is PeerState.READY
        conn.state = PeerState.CLOSED
        held = bool(conn.nick) and self.by_nick.get(conn.nick) is conn
        if held:
            del self.by_nick[conn.nick]
        if was_ready:
            self.ready.remove(conn)
            self._peerlist_cache.clear()
            if held:  # a displaced squatter's nick lives on: no departure
                self.output.add_departure(conn.entry(disconnected=True))
                if self._busy:
                    self._pending()
                else:  # called by the driver on its own: this is the end of the call
                    self._done()

    def close(self, conn: Conn, reason: str, abort: bool = False) -> None:
        if conn.state is PeerState.CLOSED:
            return
        log.debug("closing %s (%s): %s", conn.addr, conn.nick or "-", reason)
        for listener in self.close_listeners:
            listener(conn, reason)
        if abort:
            conn.writer.abort()
        else:
            conn.writer.close()
        self.lost(conn)

    def _cut(self, conn: Conn, reason: str) -> None:
        self.close(conn, reason, abort=True)

    def _bad_input(self, conn: Conn, reason: str) -> None:
        """The peer broke the protocol: count it and cut the connection (a peer in
        the middle of nick auth is told ``malformed`` first)."""
        self.stats.closed_bad_input += 1
        if conn.state is PeerState.AUTHENTICATING:
            self.stats.nick_auth_failed += 1
            conn.writer.write(admission.RESULT_FRAMES["malformed"])
            self.close(conn, reason)
        else:
            self.close(conn, reason, abort=True)

    def close_all(self) -> None:
        self._busy = True
        for conn in list(self.conns):
            if conn.state is PeerState.READY and not conn.writer.is_closing():
                conn.writer.write(admission.DISCONNECT_FRAME)
            self.close(conn, "server shutting down")
        self._done()

    def peerlist_changed(self) -> None:
        self._peerlist_cache.clear()

    # --- output -------------------------------------------------------------------

    def send(self, conn: Conn, data: bytes) -> None:
        self.output.send(conn, data)

    def _pending(self) -> None:
        if self._schedule is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            # at most one flush per flush_interval: at low load the next turn, under
            # load a few ms later with more lines per write (fewer writes per line
            # for us and for every recipient)
            wait = self._last_flush + self.config.flush_interval - self.clock()
            if wait > 0 and self._schedule_later is not None:
                self._schedule_later(wait, self.flush)
            else:
                self._schedule(self.flush)

    def flush(self) -> None:
        """Write what this turn gathered (the driver's call_soon lands here)."""
        self._flush_scheduled = False
        self._last_flush = self.clock()
        busy, self._busy = self._busy, True
        try:
            # cutting slow peers while flushing adds departures: flush until quiet
            for _ in range(4):
                self.output.flush()
                if not self.output.pending:
                    break
        finally:
            self._busy = busy
        if self.output.pending:
            self._pending()

    def _done(self) -> None:
        """The end of a call from outside: flush now, or make sure a flush is due."""
        self._busy = False
        if self._schedule is None:
            self.flush()
        elif self.output.pending:
            self._pending()

    # --- reading --------------------------------------------------------------

    def feed(self, conn: Conn, data: bytes) -> None:
        if conn.state is PeerState.CLOSED:
            return
        self._busy = True
        try:
            lines = conn.lines.feed(data)
        except JoinMarketProtocolError as exc:
            self._bad_input(conn, str(exc))
            self._done()
            return
        if not lines:
            self._busy = False
            return
        now = self.clock()
        conn.last_seen = now
        conn.pinged = False
        # token bucket, refilled once per read rather than per line
        cfg = self.config
        conn.tokens = min(cfg.burst, conn.tokens + (now - conn.last_refill) * cfg.rate)
        conn.last_refill = now
        for raw in lines:
            if conn.tokens < 1.0:
                # over the rate: dropped, never disconnected unless configured
                self.stats.dropped_rate += 1
                conn.violations += 1
                limit = cfg.max_rate_violations
                if limit is not None and conn.violations > limit:
                    self.stats.closed_bad_input += 1
                    self.close(conn, "message rate far over the limit", abort=True)
                    break
                continue
            conn.tokens -= 1.0
            try:
                msg_type, line = decode_frame(raw)
            except JoinMarketProtocolError as exc:
                self._bad_input(conn, str(exc))
                break
            if not is_unicode(line):
                self._bad_input(conn, "line holds a lone surrogate")
                break
            if conn.state is PeerState.READY:
                if msg_type == _PUBMSG:
                    self._public(conn, line)
                elif msg_type == _PRIVMSG:
                    self._private(conn, line)
                else:
                    self._ready_message(conn, msg_type, line)
            else:
                self._pre_ready_message(conn, msg_type, line)
            if conn.closed:
                break
        self._done()

    def _public(self, conn: Conn, line: str) -> None:
        nick = conn.nick
        n = len(nick)
        # "nick!PUBLIC!body": only the sender's own nick may stand in front
        if line[n : n + 8] != "!PUBLIC!" or not line.startswith(nick) or len(line) == n + 8:
            self.stats.dropped_spoofed += 1
            log.debug("dropped public message from %s not signed with its nick", nick)
            return
        self.output.add_public(conn, encode_frame(_PUBMSG, line))
        self._pending()

    def _private(self, conn: Conn, line: str) -> None:
        parts = line.split("!", 2)
        if len(parts) != 3 or parts[0] != conn.nick:
            self.stats.dropped_spoofed += 1
            log.debug("dropped private message from %s with another sender", conn.nick)
            return
        # a message to oneself is relayed back, as joinmarket-ng does
        target = self.by_nick.get(parts[1])
        if target is None or target.state is not PeerState.READY:
            self.stats.dropped_no_recipient += 1
            log.debug("dropped private message from %s: no peer %.20s", conn.nick, parts[1])
            return
        self.stats.private_relayed += 1
        self.output.add_private(target, encode_frame(_PRIVMSG, line))
        if conn.location != NOT_SERVING_ONION:
            # joinmarket-ng's directory tells the recipient where the sender can be
            # reached directly; takers learn makers' onions this way
            frames = conn.location_frames
            if frames is None:
                entry = conn.entry()
                frames = conn.location_frames = {
                    flag: encode_frame(MessageType.PEERLIST, entry.encode(flag))
                    for flag in (True, False)
                }
            self.output.add_private(target, frames[FEATURE_PEERLIST_FEATURES in target.features])
            self.stats.locations_forwarded += 1
        self._pending()

    def _ready_message(self, conn: Conn, msg_type: int, line: str) -> None:
        if msg_type == MessageType.PING:
            self.send(conn, _PONG_FRAME)
        elif msg_type == MessageType.PONG:
            pass
        elif msg_type == MessageType.GETPEERLIST:
            for frame in self._peerlist(FEATURE_PEERLIST_FEATURES in conn.features):
                self.send(conn, frame)
                if conn.state is PeerState.CLOSED:
                    return
        elif msg_type == MessageType.DISCONNECT:
            self.close(conn, "peer said goodbye")
        elif msg_type in _AUTH_TYPES:
            self._bad_input(conn, f"nick-auth message {msg_type} after the handshake")
        else:
            self.stats.dropped_unknown += 1
            log.debug("dropped message type %d from %s", msg_type, conn.nick)

    def _peerlist(self, with_features: bool) -> list[bytes]:
        cached = self._peerlist_cache.get(with_features)
        if cached is None:
            entries = [c.entry() for c in self.ready]
            lines = encode_peerlist(entries, with_features) or [""]
            cached = [encode_frame(MessageType.PEERLIST, line) for line in lines]
            self._peerlist_cache[with_features] = cached
        return cached

    def _pre_ready_message(self, conn: Conn, msg_type: int, line: str) -> None:
        if msg_type == MessageType.PING:
            self.send(conn, _PONG_FRAME)
        elif conn.state is PeerState.HANDSHAKE and msg_type == MessageType.HANDSHAKE:
            admission.handshake(self, conn, line)
        elif conn.state is PeerState.AUTHENTICATING and msg_type == MessageType.NICK_AUTH_PROOF:
            admission.proof(self, conn, line)
        else:
            self._bad_input(conn, f"type {msg_type} before the handshake completed")

    # --- timers -----------------------------------------------------------------

    def tick(self) -> None:
        """Call every few seconds: keeps quiet peers alive, cuts dead and stuck ones.

        A ping-capable peer quiet for ``idle_ping`` is pinged; any other is sent
        a unicast ``!orderbook``, which makers answer (the reference's makers do
        not know ping). A peer silent for ``idle_timeout`` is evicted."""
        now = self.clock()
        cfg = self.config
        self._busy = True
        for conn in list(self.conns):
            quiet = now - conn.last_seen
            if conn.state is not PeerState.READY:
                if admission.expire_overdue(self, conn, now):
                    continue
                if now - conn.opened > cfg.handshake_timeout:
                    self.stats.closed_idle += 1
                    self.close(conn, "no handshake in time", abort=True)
            elif quiet > cfg.idle_timeout:
                self.stats.closed_idle += 1
                self.close(conn, "silent for too long", abort=True)
            elif quiet > cfg.idle_ping and not conn.pinged:
                conn.pinged = True
                if FEATURE_PING in conn.features:
                    self.send(conn, _PING_FRAME)
                else:
                    probe = public_line(self.identity.nick, ORDERBOOK)
                    self.send(conn, encode_frame(_PUBMSG, probe))
        self._done()
