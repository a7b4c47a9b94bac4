"""Sans-I/O client side of a directory connection: bytes in, events and bytes out.

No asyncio here. The driver (:mod:`peerpool.joinmarket.client`) feeds what it
reads to :meth:`DirectoryClientProtocol.receive_data`, dispatches
:meth:`events_received` and writes :meth:`data_to_send`. Fatal violations by the
directory (over-long or non-JSON lines, a refused or wrong-network handshake,
failed required nick auth) raise a typed error and the driver closes the
connection; what other peers do wrong through the directory (bad signatures,
spoofed senders, unknown types) is dropped and reported as a :class:`Dropped`
event, never fatal for the connection.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from peerpool.errors import (
    BadSignatureError,
    DirectoryConnectionError,
    HandshakeRejectedError,
    JoinMarketProtocolError,
    MalformedLineError,
    NickAuthError,
)
from peerpool.joinmarket.identity import JM_VERSION, NickIdentity
from peerpool.joinmarket.messages import (
    APP_NAME,
    FEATURE_NICK_AUTH,
    FEATURE_PEERLIST_FEATURES,
    FEATURE_PING,
    NOT_SERVING_ONION,
    PUBLIC,
    ClientHandshake,
    DirectoryHandshake,
    private_line,
    public_line,
    split_routed,
    verify_private,
)
from peerpool.joinmarket.nickauth import NickAuthChallenge, NickAuthProof, NickAuthResult
from peerpool.joinmarket.peerlist import PeerEntry, parse_peerlist
from peerpool.joinmarket.wire import (
    MAX_LINE_BYTES,
    LineBuffer,
    MessageType,
    decode_frame,
    encode_frame,
)

log = logging.getLogger(__name__)


class NickAuthMode(enum.Enum):
    """Whether a client proves its nick to a directory (JMP-0005): ``OFF`` (not
    advertised), ``PREFER`` (when the directory offers it; carry on if it fails)
    or ``REQUIRE`` (a directory that does not verify our nick is refused).
    """

    OFF = "off"  # do not advertise nick_auth
    PREFER = "prefer"  # authenticate when the directory offers it, carry on if it fails
    REQUIRE = "require"  # a directory that does not verify our nick is refused


class State(enum.Enum):
    NEW = "new"
    HANDSHAKING = "handshaking"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    directory: DirectoryHandshake
    nick_verified: bool


@dataclass(frozen=True, slots=True)
class PeersUpdated:
    entries: tuple[PeerEntry, ...]


@dataclass(frozen=True, slots=True)
class PublicMessage:
    from_nick: str
    body: str  # "cmd args", possibly several "!"-separated commands


@dataclass(frozen=True, slots=True)
class PrivateMessage:
    """A private message whose signature verified against ``from_nick``."""

    from_nick: str
    command: str
    data: str
    pubkey_hex: str


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str
    excerpt: str


@dataclass(frozen=True, slots=True)
class DisconnectRequested:
    line: str


Event = (
    HandshakeDone | PeersUpdated | PublicMessage | PrivateMessage | Dropped | DisconnectRequested
)


class DirectoryClientProtocol:
    """One connection to a directory, from a maker's or taker's side."""

    def __init__(
        self,
        identity: NickIdentity,
        network: str,
        *,
        location: str = NOT_SERVING_ONION,
        nick_auth: NickAuthMode = NickAuthMode.PREFER,
        directory_id: str | None = None,
        extra_features: frozenset[str] = frozenset(),
        max_line: int = MAX_LINE_BYTES,
        peer_nick: str | None = None,
    ) -> None:
        self.identity = identity
        self.network = network
        # peer mode: a direct connection to a maker's onion, which answers our 793
        # with its own 793 instead of a directory's 795
        self.peer_nick = peer_nick
        self.location = location
        self.nick_auth = nick_auth
        self.expected_directory_id = directory_id
        features = {FEATURE_PEERLIST_FEATURES, FEATURE_PING, *extra_features}
        if nick_auth is not NickAuthMode.OFF:
            features.add(FEATURE_NICK_AUTH)
        self.features = frozenset(features)
        self.state = State.NEW
        self.directory: DirectoryHandshake | None = None
        self.nick_verified = False
        self._lines = LineBuffer(max_line)
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._handshake_line = ""
        self._challenge: NickAuthChallenge | None = None
        self.dropped = 0  # messages from other peers that we dropped, for any reason
        # ... of which our own parsing raised something untyped: a bug to fix, but
        # still only a dropped message (the fuzz tests assert this stays 0)
        self.dropped_unexpected = 0

    @property
    def nick(self) -> str:
        """Our nick (from the identity's key)."""
        return self.identity.nick

    # --- output ---------------------------------------------------------------

    def start(self) -> None:
        """Queue our handshake (the client always speaks first)."""
        if self.state is not State.NEW:
            raise DirectoryConnectionError("handshake already started")
        hs = ClientHandshake(self.nick, self.network, self.location, self.features)
        self._handshake_line = hs.to_line()
        self._out.append(encode_frame(MessageType.HANDSHAKE, self._handshake_line))
        self.state = State.HANDSHAKING

    def _require_ready(self) -> None:
        if self.state is not State.READY:
            raise DirectoryConnectionError(f"directory connection is {self.state.value}, not ready")

    def send_public(self, cmd: str, args: str = "") -> None:
        """Queue a public message (``cmd`` such as ``!orderbook``, with ``args``); see ``data_to_send``.

        Raises:
            peerpool.errors.DirectoryConnectionError: the connection is not ready
                (handshake not finished, or closed).
        """
        self._require_ready()
        self._out.append(encode_frame(MessageType.PUBMSG, public_line(self.nick, cmd, args)))

    def send_private(self, to_nick: str, cmd: str, data: str) -> None:
        """Queue a private message to ``to_nick``, signed with our nick key.

        Raises:
            peerpool.errors.DirectoryConnectionError: the connection is not ready.
        """
        self._require_ready()
        line = private_line(self.identity, to_nick, cmd, data)
        self._out.append(encode_frame(MessageType.PRIVMSG, line))

    def request_peerlist(self) -> None:
        """Queue a ``getpeerlist``; the answer arrives as peerlist events.

        Raises:
            peerpool.errors.DirectoryConnectionError: the connection is not ready.
        """
        self._require_ready()
        self._out.append(encode_frame(MessageType.GETPEERLIST, ""))

    def send_ping(self) -> None:
        """Queue a ping (the directory answers with a pong).

        Raises:
            peerpool.errors.DirectoryConnectionError: the connection is not ready.
        """
        self._require_ready()
        self._out.append(encode_frame(MessageType.PING, ""))

    def send_disconnect(self) -> None:
        """Queue a polite disconnect and mark the connection closed (idempotent)."""
        if self.state is not State.CLOSED:
            self._out.append(encode_frame(MessageType.DISCONNECT, ""))
            self.state = State.CLOSED

    def data_to_send(self) -> bytes:
        """The bytes queued for the directory since the last call (empty if none); the caller writes them."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def events_received(self) -> list[Event]:
        """The events parsed since the last call, in order (messages, peerlists, the
        handshake's outcome), for the caller to act on.
        """
        events = self._events
        self._events = []
        return events

    # --- input ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Parse bytes from the directory. Raises a :class:`JoinMarketProtocolError`
        subclass when the directory itself breaks the protocol."""
        if self.state is State.CLOSED:
            return
        for raw in self._lines.feed(data):
            frame = decode_frame(raw)
            self._dispatch(frame.type, frame.line)

    def _drop(self, reason: str, line: str) -> None:
        self.dropped += 1
        log.debug("dropped from directory: %s", reason)
        self._events.append(Dropped(reason, line[:120]))

    def _relayed(self, handler: Callable[[str], None], line: str) -> None:
        """Run a handler of what another peer sent through the directory. Those
        bytes are the attacker's, not the directory's: whatever they make our
        parsing raise ends as one dropped message, never as a dead connection."""
        try:
            handler(line)
        except JoinMarketProtocolError as exc:
            self._drop(str(exc), line)
        except Exception as exc:
            self.dropped_unexpected += 1
            self._drop(f"unexpected {type(exc).__name__} on a relayed message", line)

    def _dispatch(self, msg_type: int, line: str) -> None:
        if msg_type == MessageType.PING:
            self._out.append(encode_frame(MessageType.PONG, ""))
        elif msg_type == MessageType.PONG:
            pass
        elif msg_type == MessageType.DN_HANDSHAKE and self.peer_nick is None:
            self._on_directory_handshake(line)
        elif msg_type == MessageType.HANDSHAKE and self.peer_nick is not None:
            self._on_peer_handshake(line)
        elif msg_type == MessageType.NICK_AUTH_CHALLENGE:
            self._on_challenge(line)
        elif msg_type == MessageType.NICK_AUTH_RESULT:
            self._on_result(line)
        elif msg_type == MessageType.NICK_AUTH_PROOF:
            raise NickAuthError("a directory does not send nick-auth proofs")
        elif msg_type == MessageType.DISCONNECT:
            self._events.append(DisconnectRequested(line[:200]))
        elif self.state is not State.READY:
            self._drop(f"type {msg_type} before the handshake completed", line)
        elif msg_type == MessageType.PRIVMSG:
            self._relayed(self._on_privmsg, line)
        elif msg_type == MessageType.PUBMSG:
            self._relayed(self._on_pubmsg, line)
        elif msg_type == MessageType.PEERLIST:
            self._relayed(self._on_peerlist, line)
        else:
            self._drop(f"unexpected message type {msg_type}", line)

    def _on_directory_handshake(self, line: str) -> None:
        if self.state is not State.HANDSHAKING:
            raise HandshakeRejectedError("unsolicited directory handshake")
        hs = DirectoryHandshake.from_line(line)
        if hs.app_name.lower() != APP_NAME or not hs.directory:
            raise HandshakeRejectedError(f"peer is not a JoinMarket directory ({hs.app_name!r})")
        if not hs.accepted:
            raise HandshakeRejectedError(f"directory refused our handshake: {hs.motd[:200]!r}")
        if hs.network != self.network:
            raise HandshakeRejectedError(
                f"directory is on network {hs.network!r}, we are on {self.network!r}"
            )
        if not hs.proto_ver_min <= JM_VERSION <= hs.proto_ver_max:
            raise HandshakeRejectedError(
                f"directory speaks versions {hs.proto_ver_min}..{hs.proto_ver_max}, not {JM_VERSION}"
            )
        self.directory = hs
        offered = FEATURE_NICK_AUTH in hs.features and self.nick_auth is not NickAuthMode.OFF
        if offered:
            self.state = State.AUTHENTICATING
        elif self.nick_auth is NickAuthMode.REQUIRE:
            raise HandshakeRejectedError("directory does not offer the required nick auth")
        else:
            self._ready()

    def _on_peer_handshake(self, line: str) -> None:
        if self.state is not State.HANDSHAKING:
            raise HandshakeRejectedError("unsolicited peer handshake")
        hs = ClientHandshake.from_line(line)
        if hs.app_name.lower() != APP_NAME or hs.directory:
            raise HandshakeRejectedError("peer is not a JoinMarket maker or taker")
        if hs.network != self.network:
            raise HandshakeRejectedError(f"peer is on network {hs.network!r}, not {self.network!r}")
        if hs.nick != self.peer_nick:
            raise HandshakeRejectedError(
                f"peer says it is {hs.nick[:20]!r}, expected {self.peer_nick}"
            )
        if hs.proto_ver != JM_VERSION:
            raise HandshakeRejectedError(f"peer speaks version {hs.proto_ver}, not {JM_VERSION}")
        self.directory = DirectoryHandshake(
            hs.nick,
            hs.network,
            True,
            "",
            hs.features,
            hs.proto_ver,
            hs.proto_ver,
            hs.app_name,
            False,
        )
        self._ready()

    def _ready(self) -> None:
        self.state = State.READY
        assert self.directory is not None
        self._events.append(HandshakeDone(self.directory, self.nick_verified))

    def _auth_failed(self, reason: str) -> None:
        if self.nick_auth is NickAuthMode.REQUIRE:
            raise NickAuthError(reason)
        log.info("nick auth failed, continuing unverified: %s", reason)
        if self.state is State.AUTHENTICATING:
            self._ready()

    def _on_challenge(self, line: str) -> None:
        if self.state is not State.AUTHENTICATING or self._challenge is not None:
            # out of order (before our handshake was answered, twice, or after):
            # a directory that breaks the sequence is not one we keep talking to
            raise NickAuthError(f"nick-auth challenge out of order (state {self.state.value})")
        challenge = NickAuthChallenge.from_line(line)
        expected = self.expected_directory_id
        if expected is None or challenge.directory_id != expected:
            # answering would hand this directory a proof it could replay at the
            # directory the challenge names; the directory waits for a proof, so
            # there is no carrying on unverified either
            raise NickAuthError(
                f"challenge is for directory {challenge.directory_id!r}, expected {expected!r}"
            )
        self._challenge = challenge
        proof = NickAuthProof.create(self.identity, challenge, self._handshake_line)
        self._out.append(encode_frame(MessageType.NICK_AUTH_PROOF, proof.to_line()))

    def _on_result(self, line: str) -> None:
        if self.state is not State.AUTHENTICATING or self._challenge is None:
            raise NickAuthError(f"nick-auth result out of order (state {self.state.value})")
        result = NickAuthResult.from_line(line)
        if result.verified:
            self.nick_verified = True
            self._ready()
        else:
            self._auth_failed(f"directory did not verify our nick: {result.code}")

    def _on_privmsg(self, line: str) -> None:
        try:
            routed = split_routed(line)
        except MalformedLineError as exc:
            self._drop(str(exc), line)
            return
        if routed.to_nick != self.nick:
            self._drop(f"private message for {routed.to_nick[:20]!r}, not us", line)
            return
        try:
            signed = verify_private(routed)
        except (BadSignatureError, MalformedLineError) as exc:
            self._drop(f"private message from {routed.from_nick[:20]!r}: {exc}", line)
            return
        self._events.append(
            PrivateMessage(routed.from_nick, signed.command, signed.data, signed.pubkey_hex)
        )

    def _on_pubmsg(self, line: str) -> None:
        try:
            routed = split_routed(line)
        except MalformedLineError as exc:
            self._drop(str(exc), line)
            return
        if routed.to_nick != PUBLIC:
            self._drop("public message not addressed to PUBLIC", line)
        elif routed.from_nick != self.nick:  # our own broadcast echoed back
            self._events.append(PublicMessage(routed.from_nick, routed.body))

    def _on_peerlist(self, line: str) -> None:
        try:
            entries = parse_peerlist(line)
        except JoinMarketProtocolError as exc:
            self._drop(f"bad peerlist: {exc}", line)
            return
        self._events.append(PeersUpdated(tuple(entries)))
