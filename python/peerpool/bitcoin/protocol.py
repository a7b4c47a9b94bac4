"""The sans-I/O core of one Bitcoin / Bitcoin SV peer connection.

Bytes in (:meth:`BitcoinProtocol.receive_data`), events out
(:meth:`~BitcoinProtocol.events_received`), bytes to write
(:meth:`~BitcoinProtocol.data_to_send`). No asyncio, no sockets, no clock:
timers (keepalive, request timeouts) belong to the driver,
:class:`peerpool.bitcoin.client.BitcoinClient`.

What it does by itself, so that no handler can get it wrong:

* the version handshake: ``version`` out at :meth:`~BitcoinProtocol.initiate`;
  on the peer's ``version`` (checked: not our own nonce, recent enough) the
  BIP155/BIP339 announcements on BTC, then ``verack``; ``protoconf`` right
  after our ``verack`` on BSV, as its specification asks;
* ``pong`` for every ``ping``, and one ``sendcmpct(announce=False)`` in reply
  to the peer's (we never ask for compact blocks);
* size policy: blocks at or above ``large_message_limit`` are never held
  whole; their payload goes through the chunk splitter and comes out as
  :class:`~peerpool.bitcoin.blocks.Chunk` events, then one LARGE
  :class:`~peerpool.bitcoin.received.Block`. Other messages are read whole up
  to ``max_message_size`` (a huge transaction is delivered, not dropped);
  above it the stream fails with ``PayloadTooLargeError``;
* the peer's ``protoconf``: messages we send (blocks aside) must fit the
  payload it accepts, ``getdata`` lists are split to fit.

Any violation raises a :class:`~peerpool.errors.BitcoinProtocolError`
subclass, after which the protocol stays failed (the byte stream cannot be
resynchronised) and the connection should be closed.

Events: :class:`HandshakeComplete`, decoded payload codecs (subclasses of
:class:`~peerpool.bitcoin.messages.wire.Message`), :class:`Chunk`,
:class:`~peerpool.bitcoin.received.Block`.

The settings are :class:`~peerpool.bitcoin.protocol_config.ProtocolConfig`
(named here too), and the bytes of a message the decoder streams are kept by
:class:`~peerpool.bitcoin.large_messages.LargeMessageGatherer`; this module
keeps the handshake, the replies and the order of events.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.budget import PayloadBudget
from peerpool.bitcoin.large_messages import (
    LargeMessageGatherer,
    check_block_size,
    check_message_size,
    small_block,
)
from peerpool.bitcoin.messages.bsv import MIN_MAX_RECV_PAYLOAD_LENGTH
from peerpool.bitcoin.messages.framing import (
    LargeBlockEnd,
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    Message,
    MessageDecoder,
    encode_message,
)
from peerpool.bitcoin.networks import Network
from peerpool.bitcoin.protocol_config import (
    DEFAULT_LARGE_MESSAGE_LIMIT,
    DEFAULT_MAX_BLOCK_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    ProtocolConfig,
)
from peerpool.bitcoin.received import Block
from peerpool.errors import (
    BitcoinProtocolError,
    BlockFormatError,
    HandshakeError,
    InputError,
    MalformedMessageError,
    MessageTooLargeForPeerError,
    PeerDisconnectedError,
)

# ProtocolConfig and its defaults live in protocol_config; they are named here
# too, where callers have always imported them from.
__all__ = [
    "BSV_DEFAULT_PEER_MAX_PAYLOAD",
    "BTC_PEER_MAX_PAYLOAD",
    "DEFAULT_LARGE_MESSAGE_LIMIT",
    "DEFAULT_MAX_BLOCK_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MIN_PEER_VERSION",
    "BitcoinProtocol",
    "HandshakeComplete",
    "ProtocolConfig",
    "ProtocolEvent",
    "State",
]

#: What a BSV peer accepts before it sends protoconf (the protoconf
#: specification's default maxRecvPayloadLength, 1,048,576 bytes).
BSV_DEFAULT_PEER_MAX_PAYLOAD: Final = MIN_MAX_RECV_PAYLOAD_LENGTH
#: MAX_PROTOCOL_MESSAGE_LENGTH of Bitcoin Core (src/net.h): 4,000,000 bytes.
BTC_PEER_MAX_PAYLOAD: Final = 4_000_000
#: protoconf's maxRecvPayloadLength is a uint32.
_MAX_ADVERTISED: Final = 0xFFFF_FFFF
#: BIP31 (protocol 60001) added the ping nonce and pong; our codecs require them.
MIN_PEER_VERSION: Final = 60_001
#: Block-related messages are exempt from protoconf's limit (its specification).
_EXEMPT_FROM_PEER_LIMIT: Final = frozenset({"block", "cmpctblock"})


class State(enum.Enum):
    NEW = "new"  # nothing sent yet
    CONNECTING = "connecting"  # version sent, handshake not finished
    ESTABLISHED = "established"
    FAILED = "failed"  # a protocol violation: close the connection
    CLOSED = "closed"  # the peer closed the stream


@dataclass(frozen=True)
class HandshakeComplete:
    """Both versions and both veracks were exchanged; ``version`` is the peer's."""

    version: msgs.Version


ProtocolEvent = HandshakeComplete | msgs.Message | Chunk | Block


class BitcoinProtocol:
    def __init__(
        self,
        network: Network,
        config: ProtocolConfig | None = None,
        *,
        peer_address: tuple[str, int] = ("0.0.0.0", 0),
        nonce: int | None = None,
        clock: Callable[[], float] = time.time,
        budget: PayloadBudget | None = None,
    ) -> None:
        self.network = network
        self.config = config or ProtocolConfig()
        self.peer_address = peer_address
        self.nonce = secrets.randbits(64) if nonce is None else nonce
        self._clock = clock
        cfg = self.config
        # Payloads above max_message_size must reach _large_start at their
        # header, to be refused before they are buffered: the decoder streams
        # them. Blocks under large_message_limit that are streamed for that
        # reason are gathered whole again there; larger ones the decoder cuts
        # into chunks itself, straight from the bytes we feed it.
        self._decoder = MessageDecoder(
            network.magic,
            max(cfg.max_message_size, cfg.max_block_size),
            min(cfg.large_message_limit, cfg.max_message_size + 1),
            block_chunk_size=cfg.chunk_size,
            min_chunked_block=cfg.large_message_limit,
            allow_witness=network.supports_segwit,
        )
        self.state = State.NEW
        self.failure: BaseException | None = None
        self.peer_version: msgs.Version | None = None
        self.peer_verack = False
        self.peer_protoconf: msgs.Protoconf | None = None
        self.peer_max_payload = (
            BSV_DEFAULT_PEER_MAX_PAYLOAD if network.is_bsv else BTC_PEER_MAX_PAYLOAD
        )
        self.peer_wants_headers = False  # the peer sent sendheaders
        self._answered_sendcmpct = False
        # inv lists up to what our advertised payload holds (BSV lifts MAX_INV_SZ
        # for peers that exchanged protoconf); BTC keeps the fixed maximum
        self._max_inv_entries = msgs.MAX_INV_ENTRIES
        if network.supports_protoconf:
            self._max_inv_entries = max(
                msgs.MAX_INV_ENTRIES, msgs.max_inv_entries_for_payload(self.advertised_max_payload)
            )
        self._large = LargeMessageGatherer(self.config, budget)
        self._events: list[ProtocolEvent] = []
        self._out: list[bytes] = []
        self.bytes_received = 0
        self.bytes_sent = 0

    # --- properties -------------------------------------------------------------

    @property
    def advertised_max_payload(self) -> int:
        return min(self.config.max_message_size, _MAX_ADVERTISED)

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    @property
    def in_message(self) -> bool:
        """True while a message is partly received (the peer is mid-send)."""
        return not self._decoder.at_boundary

    # --- output -----------------------------------------------------------------

    def initiate(self) -> None:
        """Start the handshake: queue our ``version``."""
        if self.state is not State.NEW:
            raise InputError(f"the handshake was already started (state {self.state.value})")
        cfg = self.config
        host, port = self.peer_address
        try:
            receiver = msgs.NetworkAddress.from_host(host, port)
        except InputError:  # a host name or onion: the field is informational only
            receiver = msgs.NetworkAddress.from_host("0.0.0.0", 0)
        version = msgs.Version(
            version=msgs.PROTOCOL_VERSION,
            services=cfg.services,
            timestamp=int(self._clock()),
            receiver=receiver,
            sender=msgs.NetworkAddress.from_host("0.0.0.0", 0, cfg.services),
            nonce=self.nonce,
            user_agent=cfg.user_agent,
            start_height=cfg.start_height,
            relay=cfg.relay,
        )
        self.state = State.CONNECTING
        self._queue(version)

    def send(self, message: msgs.Message) -> None:
        """Queue ``message``; raises MessageTooLargeForPeerError if the peer
        would refuse its size."""
        self._check_usable()
        self._queue(message)

    def send_raw(self, command: str, payload: bytes) -> None:
        """Queue a payload that is already encoded (a raw block, say)."""
        self._check_usable()
        self._queue_raw(command, payload)

    def send_getdata(self, items: Iterable[msgs.InvVector]) -> int:
        """Queue ``getdata`` for ``items``, split into messages the peer accepts;
        returns how many messages were queued."""
        per_message = msgs.max_inv_entries_for_payload(self.peer_max_payload)
        if self.peer_protoconf is None:  # only protoconf lifts MAX_INV_SZ
            per_message = min(per_message, msgs.MAX_INV_ENTRIES)
        entries = list(items)
        batches = [entries[i : i + per_message] for i in range(0, len(entries), per_message)]
        for batch in batches:
            self.send(msgs.GetData(tuple(batch)))
        return len(batches)

    def data_to_send(self) -> bytes:
        """Everything queued since the last call."""
        out, self._out = self._out, []
        data = b"".join(out)
        self.bytes_sent += len(data)
        return data

    def _check_usable(self) -> None:
        if self.state in (State.FAILED, State.CLOSED):
            raise PeerDisconnectedError(f"the connection is {self.state.value}") from self.failure

    def _queue(self, message: msgs.Message) -> None:
        self._queue_raw(message.COMMAND, message.encode())

    def _queue_raw(self, command: str, payload: bytes) -> None:
        if command not in _EXEMPT_FROM_PEER_LIMIT and len(payload) > self.peer_max_payload:
            raise MessageTooLargeForPeerError(
                f"'{command}' payload of {len(payload)} bytes exceeds the "
                f"{self.peer_max_payload} bytes the peer accepts"
            )
        self._out.append(encode_message(self.network.magic, command, payload))

    # --- input ------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Parse bytes from the peer; raises a BitcoinProtocolError on a violation."""
        if self.state is State.FAILED:
            raise BitcoinProtocolError("the protocol already failed") from self.failure
        self.bytes_received += len(data)
        try:
            try:
                events = self._decoder.feed(data)
            except (BitcoinProtocolError, BlockFormatError) as exc:
                # what decoded before the bad bytes arrived intact: handled
                # (so its events go out first), then the stream fails
                self._handle_decoded(exc.events)
                if isinstance(exc, BlockFormatError):  # a chunked block that is no block
                    raise MalformedMessageError(str(exc), offset=exc.offset) from exc
                raise
            self._handle_decoded(events)
        except BitcoinProtocolError as exc:
            self.state = State.FAILED
            self.failure = exc
            self._large.drop()
            raise

    def _handle_decoded(self, events: Iterable[object]) -> None:
        for event in events:
            if isinstance(event, Chunk):
                self._chunk(event)
            elif isinstance(event, LargeMessagePiece):
                self._large_piece(event.data)
            elif isinstance(event, LargeMessageStart):
                self._large_start(event.command, event.length)
            elif isinstance(event, LargeBlockEnd):
                self._large_block_end(event)
            elif isinstance(event, LargeMessageEnd):
                self._large_end()
            elif isinstance(event, Message):
                self._message(event.command, event.payload)

    def receive_eof(self) -> None:
        """The peer closed its side. Raises PeerDisconnectedError if it did so
        in the middle of a message."""
        if self.state is State.FAILED:
            return
        self.state = State.CLOSED
        if self.in_message:
            raise PeerDisconnectedError(
                f"the peer closed the connection in the middle of a message "
                f"(after {self.bytes_received} bytes)"
            )

    def events_received(self) -> list[ProtocolEvent]:
        """The events parsed since the last call, in stream order."""
        events, self._events = self._events, []
        return events

    # --- messages -----------------------------------------------------------------

    def _message(self, command: str, payload: bytes) -> None:
        if command == "block":
            check_block_size(self.config, len(payload))
            self._small_block(payload)
            return
        check_message_size(self.config, command, len(payload))
        self._on_message(self._decode(command, payload))

    def _decode(self, command: str, payload: bytes) -> msgs.Message:
        try:
            return msgs.decode_message(command, payload, max_inv_entries=self._max_inv_entries)
        except BitcoinProtocolError:
            raise
        except InputError as exc:  # a codec's field check: still the peer's bytes
            raise MalformedMessageError(f"{command}: {exc}") from exc

    def _on_message(self, message: msgs.Message) -> None:
        if self.peer_version is None and not isinstance(message, msgs.Version):
            raise HandshakeError(f"'{_command_of(message)}' before the peer's version")
        if isinstance(message, msgs.Version):
            self._on_version(message)
        elif isinstance(message, msgs.VerAck):
            self.peer_verack = True  # a repeated verack is harmless (Core ignores it too)
        elif isinstance(message, msgs.Ping):
            self._queue(msgs.Pong(message.nonce))
        elif isinstance(message, msgs.Protoconf):
            self._on_protoconf(message)
        elif isinstance(message, msgs.SendHeaders):
            self.peer_wants_headers = True
        elif isinstance(message, msgs.SendCmpct) and not self._answered_sendcmpct:
            self._answered_sendcmpct = True
            self._queue(msgs.SendCmpct(False, message.version))
        self._events.append(message)
        if self.peer_version is not None and self.peer_verack and self.state is State.CONNECTING:
            self.state = State.ESTABLISHED
            self._events.append(HandshakeComplete(self.peer_version))

    def _on_version(self, version: msgs.Version) -> None:
        if self.peer_version is not None:
            raise HandshakeError("the peer sent a second version")
        if version.nonce == self.nonce:
            raise HandshakeError("the peer's version carries our own nonce: we dialed ourselves")
        if version.version < MIN_PEER_VERSION:
            raise HandshakeError(
                f"peer protocol version {version.version} is below {MIN_PEER_VERSION}"
            )
        self.peer_version = version
        if self.network.supports_segwit:  # BIP155 and BIP339 go between version and verack
            if self.config.wtxid_relay:
                self._queue(msgs.WtxidRelay())
            self._queue(msgs.SendAddrV2())
        self._queue(msgs.VerAck())
        if self.network.supports_protoconf:
            self._queue(msgs.Protoconf(self.advertised_max_payload, "Default"))
        if self.config.send_headers:
            self._queue(msgs.SendHeaders())

    def _on_protoconf(self, protoconf: msgs.Protoconf) -> None:
        if self.peer_protoconf is not None:
            # the specification: at most one per connection
            raise HandshakeError("the peer sent a second protoconf")
        self.peer_protoconf = protoconf
        self.peer_max_payload = protoconf.max_recv_payload_length

    # --- blocks and large messages ------------------------------------------------

    def _small_block(self, payload: bytes) -> None:
        if self.peer_version is None:
            raise HandshakeError("'block' before the peer's version")
        self._events.append(small_block(payload, self.network.supports_segwit))

    def _large_start(self, command: str, length: int) -> None:
        if self.peer_version is None:
            raise HandshakeError(f"'{command}' before the peer's version")
        self._large.start(command, length)

    def release_budget(self) -> None:
        """Give back what the message being gathered reserved (it ended, or
        the connection did). Idempotent."""
        self._large.release_budget()

    def _chunk(self, chunk: Chunk) -> None:
        self._large.chunk(chunk)
        self._events.append(chunk)

    def _large_piece(self, data: bytes) -> None:
        self._large.piece(data)

    def _large_block_end(self, end: LargeBlockEnd) -> None:
        self._events.append(self._large.block_end(end))

    def _large_end(self) -> None:
        gathered = self._large.end()
        if gathered is None:
            return
        command, payload = gathered
        if command == "block":
            self._small_block(payload)
        else:
            self._on_message(self._decode(command, payload))


def _command_of(message: msgs.Message) -> str:
    return message.command if isinstance(message, msgs.UnknownMessage) else message.COMMAND
