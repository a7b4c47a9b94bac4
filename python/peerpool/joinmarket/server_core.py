"""The directory node's logic, without I/O: connections in, bytes to writers out.

:class:`DirectoryCore` owns the peer table. The asyncio driver
(:mod:`peerpool.joinmarket.server`) hands it each connection's transport (any
object with ``write``, ``close``, ``abort`` and ``get_write_buffer_size``) and
the bytes read; tests hand it fake writers. It validates handshakes, runs
JMP-0005 nick auth when a directory id is configured, relays public messages
to every handshaken peer and private messages to their recipient (only when
``from`` is the sender's own nick), serves peerlists, announces departures,
pings idle peers and limits line size and message rate per connection.

Hot path: a relayed line is encoded once and the same bytes go to every
recipient; public messages from one read are joined and written with one call
per recipient; nothing is logged per message above DEBUG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from peerpool.errors import JoinMarketProtocolError, NickAuthError
from peerpool.joinmarket.identity import JM_VERSION, NickIdentity, is_valid_nick
from peerpool.joinmarket.messages import (
    APP_NAME,
    FEATURE_NICK_AUTH,
    FEATURE_PEERLIST_FEATURES,
    FEATURE_PING,
    ClientHandshake,
    DirectoryHandshake,
)
from peerpool.joinmarket.nickauth import (
    NickAuthChallenge,
    NickAuthProof,
    NickAuthResult,
    validate_directory_id,
)
from peerpool.joinmarket.peerlist import encode_peerlist
from peerpool.joinmarket.server_state import (
    Conn,
    PeerState,
    ServerConfig,
    ServerStats,
    Writer,
    valid_location,
)
from peerpool.joinmarket.wire import (
    MessageType,
    decode_frame,
    encode_frame,
)

log = logging.getLogger(__name__)

_PRIVMSG = int(MessageType.PRIVMSG)
_PUBMSG = int(MessageType.PUBMSG)
_PING_FRAME = encode_frame(MessageType.PING, "")
_PONG_FRAME = encode_frame(MessageType.PONG, "")
_DISCONNECT_FRAME = encode_frame(MessageType.DISCONNECT, "")


class DirectoryCore:
    def __init__(
        self,
        config: ServerConfig,
        identity: NickIdentity | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.identity = identity or NickIdentity()
        self.clock = clock
        self.stats = ServerStats()
        self.conns: set[Conn] = set()
        self.by_nick: dict[str, Conn] = {}  # handshaken (or authenticating) peers
        self.ready: list[Conn] = []  # broadcast targets, kept as a list for speed
        self._peerlist_cache: dict[bool, list[bytes]] = {}
        self.features = frozenset({FEATURE_PEERLIST_FEATURES, FEATURE_PING})
        self.set_directory_id(config.directory_id)

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
        """The transport is gone; forget the peer and tell the others it left."""
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        was_ready = conn.state is PeerState.READY
        conn.state = PeerState.CLOSED
        if conn.nick and self.by_nick.get(conn.nick) is conn:
            del self.by_nick[conn.nick]
        if was_ready:
            self.ready.remove(conn)
            self._peerlist_cache.clear()
            self._broadcast(self._departure_frames(conn), None)

    def _departure_frames(self, conn: Conn) -> dict[bool, bytes]:
        entry = conn.entry(disconnected=True)
        return {
            True: encode_frame(MessageType.PEERLIST, entry.encode(True)),
            False: encode_frame(MessageType.PEERLIST, entry.encode(False)),
        }

    def _close(self, conn: Conn, reason: str, abort: bool = False) -> None:
        log.debug("closing %s (%s): %s", conn.addr, conn.nick or "-", reason)
        if abort:
            conn.writer.abort()
        else:
            conn.writer.close()
        self.lost(conn)

    def close_all(self) -> None:
        for conn in list(self.conns):
            if conn.state is PeerState.READY:
                conn.writer.write(_DISCONNECT_FRAME)
            self._close(conn, "server shutting down")

    # --- writing --------------------------------------------------------------

    def _send(self, conn: Conn, data: bytes) -> None:
        writer = conn.writer
        writer.write(data)
        if writer.get_write_buffer_size() > self.config.max_write_buffer:
            self.stats.closed_slow += 1
            self._close(conn, "write buffer over the limit (slow reader)", abort=True)

    def _broadcast(self, frames: dict[bool, bytes] | bytes, skip: Conn | None) -> int:
        """Write to every ready peer but ``skip``; returns the number of deliveries."""
        limit = self.config.max_write_buffer
        slow = []
        count = 0
        same = frames if isinstance(frames, bytes) else None
        for conn in self.ready:
            if conn is skip:
                continue
            writer = conn.writer
            if same is not None:
                writer.write(same)
            else:
                assert isinstance(frames, dict)
                writer.write(frames[FEATURE_PEERLIST_FEATURES in conn.features])
            count += 1
            if writer.get_write_buffer_size() > limit:
                slow.append(conn)
        for conn in slow:
            self.stats.closed_slow += 1
            self._close(conn, "write buffer over the limit (slow reader)", abort=True)
        return count

    # --- reading --------------------------------------------------------------

    def feed(self, conn: Conn, data: bytes) -> None:
        if conn.state is PeerState.CLOSED:
            return
        try:
            lines = conn.lines.feed(data)
        except JoinMarketProtocolError as exc:
            self.stats.closed_bad_input += 1
            self._close(conn, str(exc), abort=True)
            return
        if not lines:
            return
        now = self.clock()
        conn.last_seen = now
        conn.pinged = False
        # token bucket, refilled once per read rather than per line
        cfg = self.config
        conn.tokens = min(cfg.burst, conn.tokens + (now - conn.last_refill) * cfg.rate)
        conn.last_refill = now
        public: list[bytes] = []
        private: dict[Conn, list[bytes]] = {}
        for raw in lines:
            if conn.tokens < 1.0:
                self.stats.dropped_rate += 1
                conn.violations += 1
                if conn.violations > cfg.max_rate_violations:
                    self.stats.closed_bad_input += 1
                    self._close(conn, "message rate far over the limit", abort=True)
                    return
                continue
            conn.tokens -= 1.0
            try:
                msg_type, line = decode_frame(raw)
            except JoinMarketProtocolError as exc:
                self.stats.closed_bad_input += 1
                self._close(conn, str(exc), abort=True)
                return
            # Relayed lines are gathered per read and written with one call per
            # recipient; switching between public and private output flushes the
            # other kind first, so every recipient sees this peer's order.
            if conn.state is PeerState.READY:
                if msg_type == _PUBMSG:
                    if private:
                        self._flush_private(private)
                    frame = self._public(conn, line)
                    if frame is not None:
                        public.append(frame)
                    continue
                if public:
                    self._flush_public(conn, public)
                    public = []
                if msg_type == _PRIVMSG:
                    self._private(conn, line, private)
                    continue
                if private:
                    self._flush_private(private)
                self._ready_message(conn, msg_type, line)
            else:
                self._pre_ready_message(conn, msg_type, line)
            if conn.state is PeerState.CLOSED:
                return
        if public:
            self._flush_public(conn, public)
        if private:
            self._flush_private(private)

    def _flush_private(self, outbox: dict[Conn, list[bytes]]) -> None:
        for target, frames in outbox.items():
            if target.state is PeerState.READY:
                self._send(target, frames[0] if len(frames) == 1 else b"".join(frames))
        outbox.clear()

    def _flush_public(self, conn: Conn, frames: list[bytes]) -> None:
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        deliveries = self._broadcast(data, conn)
        self.stats.public_relayed += len(frames)
        self.stats.public_deliveries += deliveries * len(frames)

    def _public(self, conn: Conn, line: str) -> bytes | None:
        nick = conn.nick
        n = len(nick)
        # "nick!PUBLIC!body": only the sender's own nick may stand in front
        if line[n : n + 8] != "!PUBLIC!" or not line.startswith(nick) or len(line) == n + 8:
            self.stats.dropped_spoofed += 1
            log.debug("dropped public message from %s not signed with its nick", nick)
            return None
        return encode_frame(_PUBMSG, line)

    def _ready_message(self, conn: Conn, msg_type: int, line: str) -> None:
        if msg_type == MessageType.PING:
            self._send(conn, _PONG_FRAME)
        elif msg_type == MessageType.PONG:
            pass
        elif msg_type == MessageType.GETPEERLIST:
            for frame in self._peerlist(FEATURE_PEERLIST_FEATURES in conn.features, conn):
                self._send(conn, frame)
                if conn.state is PeerState.CLOSED:
                    return
        elif msg_type == MessageType.DISCONNECT:
            self._close(conn, "peer said goodbye")
        else:
            self.stats.dropped_unknown += 1
            log.debug("dropped message type %d from %s", msg_type, conn.nick)

    def _private(self, conn: Conn, line: str, outbox: dict[Conn, list[bytes]]) -> None:
        parts = line.split("!", 2)
        if len(parts) != 3 or parts[0] != conn.nick:
            self.stats.dropped_spoofed += 1
            log.debug("dropped private message from %s with another sender", conn.nick)
            return
        target = self.by_nick.get(parts[1])
        if target is None or target.state is not PeerState.READY or target is conn:
            self.stats.dropped_no_recipient += 1
            log.debug("dropped private message from %s: no peer %.20s", conn.nick, parts[1])
            return
        self.stats.private_relayed += 1
        frames = outbox.get(target)
        if frames is None:
            outbox[target] = [encode_frame(_PRIVMSG, line)]
        else:
            frames.append(encode_frame(_PRIVMSG, line))

    def _peerlist(self, with_features: bool, conn: Conn) -> list[bytes]:
        cached = self._peerlist_cache.get(with_features)
        if cached is None:
            entries = [c.entry() for c in self.ready]
            lines = encode_peerlist(entries, with_features) or [""]
            cached = [encode_frame(MessageType.PEERLIST, line) for line in lines]
            self._peerlist_cache[with_features] = cached
        return cached

    # --- handshake and nick auth -------------------------------------------------

    def _pre_ready_message(self, conn: Conn, msg_type: int, line: str) -> None:
        if msg_type == MessageType.PING:
            self._send(conn, _PONG_FRAME)
        elif conn.state is PeerState.HANDSHAKE and msg_type == MessageType.HANDSHAKE:
            self._handshake(conn, line)
        elif conn.state is PeerState.AUTHENTICATING and msg_type == MessageType.NICK_AUTH_PROOF:
            self._proof(conn, line)
        else:
            self.stats.closed_bad_input += 1
            self._close(conn, f"type {msg_type} before the handshake completed", abort=True)

    def _refuse(self, conn: Conn, reason: str) -> None:
        self.stats.rejected += 1
        answer = DirectoryHandshake(
            self.identity.nick, self.config.network, False, reason, self.features
        )
        conn.writer.write(encode_frame(MessageType.DN_HANDSHAKE, answer.to_line()))
        self._close(conn, f"handshake refused: {reason}")

    def _handshake(self, conn: Conn, line: str) -> None:
        try:
            hs = ClientHandshake.from_line(line)
        except JoinMarketProtocolError as exc:
            self._refuse(conn, f"malformed handshake: {exc}")
            return
        cfg = self.config
        reason = ""
        if hs.app_name != APP_NAME:
            reason = f"unknown app-name {hs.app_name[:40]!r}"
        elif hs.directory:
            reason = "directories do not peer with each other here"
        elif hs.proto_ver != JM_VERSION:
            reason = f"protocol version {hs.proto_ver} unsupported"
        elif hs.network != cfg.network:
            reason = f"wrong network {hs.network[:20]!r}, this is {cfg.network}"
        elif not is_valid_nick(hs.nick):
            reason = "malformed nick"
        elif hs.nick in self.by_nick or hs.nick == self.identity.nick:
            reason = f"nick {hs.nick} is in use"
        elif not valid_location(hs.location):
            reason = "malformed location-string"
        if reason:
            self._refuse(conn, reason)
            return
        conn.nick = hs.nick
        conn.location = hs.location
        conn.features = hs.features
        conn.handshake_line = line
        self.by_nick[hs.nick] = conn
        answer = DirectoryHandshake(self.identity.nick, cfg.network, True, cfg.motd, self.features)
        self._send(conn, encode_frame(MessageType.DN_HANDSHAKE, answer.to_line()))
        if conn.state is PeerState.CLOSED:
            return
        if cfg.directory_id is not None and FEATURE_NICK_AUTH in hs.features:
            conn.challenge = NickAuthChallenge.fresh(cfg.directory_id)
            conn.state = PeerState.AUTHENTICATING
            self._send(
                conn, encode_frame(MessageType.NICK_AUTH_CHALLENGE, conn.challenge.to_line())
            )
        else:
            self._make_ready(conn)

    def _proof(self, conn: Conn, line: str) -> None:
        assert conn.challenge is not None
        try:
            NickAuthProof.from_line(line).verify(conn.challenge, conn.handshake_line, conn.nick)
        except JoinMarketProtocolError as exc:
            code = "invalid" if isinstance(exc, NickAuthError) else "malformed"
            self.stats.rejected += 1
            conn.writer.write(
                encode_frame(MessageType.NICK_AUTH_RESULT, NickAuthResult(code, False).to_line())
            )
            self._close(conn, f"nick auth failed: {exc}")
            return
        self._send(
            conn, encode_frame(MessageType.NICK_AUTH_RESULT, NickAuthResult("ok", True).to_line())
        )
        if conn.state is not PeerState.CLOSED:
            self._make_ready(conn)

    def _make_ready(self, conn: Conn) -> None:
        conn.state = PeerState.READY
        conn.challenge = None
        self.ready.append(conn)
        self._peerlist_cache.clear()
        self.stats.accepted += 1

    # --- timers -----------------------------------------------------------------

    def tick(self) -> None:
        """Call every few seconds: pings quiet peers, cuts dead and stuck ones."""
        now = self.clock()
        cfg = self.config
        for conn in list(self.conns):
            quiet = now - conn.last_seen
            if conn.state is not PeerState.READY:
                if now - conn.opened > cfg.handshake_timeout:
                    self.stats.closed_idle += 1
                    self._close(conn, "no handshake in time", abort=True)
            elif quiet > cfg.idle_timeout:
                self.stats.closed_idle += 1
                self._close(conn, "silent for too long", abort=True)
            elif quiet > cfg.idle_ping and not conn.pinged and FEATURE_PING in conn.features:
                conn.pinged = True
                self._send(conn, _PING_FRAME)
