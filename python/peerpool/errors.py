"""The exception tree: one base, one branch per protocol or subsystem.

Every error peerpool raises is a :class:`PeerpoolError`. Errors caused by bad
input (bytes from a peer, a malformed address, a corrupt file) also subclass
:class:`ValueError`, so callers that already catch ``ValueError`` keep working.
The Rust kernels raise these same classes: ``rust/src/py/errors.rs`` looks them
up here by name, so this file is the single place the tree is defined.
"""

from __future__ import annotations


class PeerpoolError(Exception):
    """Base of every error raised by peerpool."""


class InputError(PeerpoolError, ValueError):
    """Bad input: bytes, text or arguments that cannot be accepted.

    ``offset`` is where in the input it went wrong, when that is known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


# --- local files and the command line -----------------------------------------


class FolderLockedError(PeerpoolError):
    """A data folder is in use by another process (``peerpool.folder_lock``);
    ``holder`` is what the lock file says of it ("peerpool sync (pid 1234)")."""

    def __init__(self, folder: object, holder: str) -> None:
        super().__init__(f"{folder} is in use by {holder}")
        self.folder = folder
        self.holder = holder


# --- encodings shared by several protocols -----------------------------------


class CompactSizeError(InputError):
    """A CompactSize (Bitcoin varint) that is truncated, non-minimal or over its limit."""


# --- Bitcoin -------------------------------------------------------------------


class BitcoinError(PeerpoolError):
    """Base of the Bitcoin / Bitcoin SV errors.

    ``events``: when ``MessageDecoder.feed`` raises, the events that same call
    decoded before the error (in stream order; they arrived intact and should
    be handled before the error is). Empty for every other error.
    """

    events: list[object] = []  # noqa: RUF012 - read-only default; the decoder sets its own


class BitcoinProtocolError(BitcoinError, InputError):
    """A peer sent bytes that break the wire protocol; the connection should be dropped."""


class BadMagicError(BitcoinProtocolError):
    """A message header starts with another network's magic bytes."""


class ChecksumError(BitcoinProtocolError):
    """A payload does not match the checksum in its header."""


class PayloadTooLargeError(BitcoinProtocolError):
    """A message announces a payload above the configured maximum."""


class PayloadBudgetExceededError(PayloadTooLargeError):
    """A non-block message that the budget shared by a manager's connections
    (``PayloadBudget``) cannot hold at the moment: refused at its header."""


class MalformedCommandError(BitcoinProtocolError):
    """A header's command field is not NUL-padded printable ASCII."""


class MalformedMessageError(BitcoinProtocolError):
    """A payload that cannot be parsed as the message its command names."""


class BlockFormatError(BitcoinError, InputError):
    """A block's bytes cannot be split into transactions; ``offset`` says where."""


class TruncatedBlockError(BlockFormatError):
    """The block ended (or was finished) in the middle of a field."""


class MalformedBlockError(BlockFormatError):
    """A field of the block holds an impossible value."""


class TxCountMismatchError(BlockFormatError):
    """The number of transactions found differs from the block's transaction count."""


class HeaderError(BitcoinError, InputError):
    """A block header that is malformed, does not connect or fails proof of work."""


class BadHeaderError(HeaderError):
    """A header in a batch fails linkage or proof of work: the peer that sent it
    misbehaves. ``index`` is its position in the batch, ``reason`` a short code
    (``high-hash``, ``prev-blk-not-found``, ``bits-above-pow-limit``, ...); the
    valid headers before it were stored."""

    def __init__(self, message: str, index: int, reason: str) -> None:
        super().__init__(message)
        self.index = index
        self.reason = reason


class OrphanHeadersError(HeaderError):
    """A batch whose first header's parent is not in the store (not in itself
    misbehaviour: ask again with a locator)."""


class UnknownHeaderError(HeaderError, LookupError):
    """A header store query named a block hash the store does not hold."""


class BadPeerAddressError(BitcoinError, InputError):
    """An ``addr``/``addrv2`` entry that cannot name a peer to dial (port 0,
    an unspecified or IPv4-mapped address where BIP155 forbids it, a field of
    the wrong size)."""


class UnknownNetworkError(BitcoinError, InputError):
    """A network name that is not one of peerpool.bitcoin.networks.NETWORKS."""


class HandshakeError(BitcoinProtocolError):
    """The peer broke the version handshake: a message before its ``version``, a
    second ``version`` or ``protoconf``, our own nonce echoed back (we dialed
    ourselves), or a version too old to speak with."""


class PeerTimeoutError(BitcoinError, TimeoutError):
    """A peer did not answer in time: the handshake, a ``pong``, or requested
    headers, block or transaction reply."""


class PeerDisconnectedError(BitcoinError, ConnectionError):
    """The connection to a peer ended before the awaited answer came;
    ``__cause__`` is the reason when one is known."""


class ModeError(BitcoinError):
    """A request/response helper was called on a client in ``Mode.LOW_LEVEL``."""


class BlockNotFoundError(BitcoinError, LookupError):
    """The peer answered ``notfound`` for a block we asked it for."""


class MessageTooLargeForPeerError(BitcoinError, InputError):
    """A message we were asked to send exceeds what the peer accepts (its
    ``protoconf``, or the protocol default when it sent none)."""


class PeerStoreError(BitcoinError):
    """The peer store's file or folder cannot be used."""


class PeerStoreFormatError(PeerStoreError, InputError):
    """The peer store's file is not a peer store this version reads: not JSON,
    too deep, a field of the wrong type, an unknown version, or not a regular
    file (a FIFO, a folder)."""


class PeerStoreWriteError(PeerStoreError, OSError):
    """Writing the peer store failed (a full disk, a read-only folder);
    ``__cause__`` is the OSError. Nothing was lost from the file: the old one
    stays until a write succeeds."""


class HeaderStoreError(BitcoinError):
    """The header store's file cannot be used as it is; it was left untouched."""


class HeaderStoreFormatError(HeaderStoreError, InputError):
    """The file is not a header store of this network: another file (text,
    JSON, ...), another network's store, or a format version this peerpool
    does not read."""


class HeaderStoreMigrationError(HeaderStoreFormatError):
    """The file was written by the old format (bare 80-byte records, no file
    header): convert it with ``peerpool.bitcoin.header_store.migrate.migrate_v1``."""


class HeaderStoreCorruptError(HeaderStoreError, InputError):
    """Damage that is not a torn tail: a record or batch whose checksum fails
    with valid data after it, or a genesis record that is not the network's.
    ``offset`` is where in the file it starts."""


class RegtestError(BitcoinError):
    """The local regtest node (peerpool.testing) could not be found, started, reached or stopped."""


class RpcError(RegtestError):
    """The node answered a JSON-RPC call with an error object.

    ``code`` is the node's error code (for example -25 or -26 for a rejected
    transaction, -22 for one that cannot be decoded) and ``method`` the call.
    """

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message


class BlockRejectedError(RegtestError):
    """``submitblock`` refused a block; ``reason`` is the node's (e.g. "bad-txnmrklroot")."""

    def __init__(self, block_hash: str, reason: str) -> None:
        super().__init__(f"block {block_hash} rejected: {reason}")
        self.block_hash = block_hash
        self.reason = reason


# --- Index (peerpool.index) -------------------------------------------------------


class IndexingError(PeerpoolError):
    """Base of the indexing errors (parsing chunks, workers, the LMDB index)."""


class ChunkOffsetsError(IndexingError, InputError):
    """The offsets given with a chunk do not delimit its transactions."""


class IndexFormatError(IndexingError, InputError):
    """The index folder was written for another network or in another format version."""


class IndexFullError(IndexingError):
    """The index reached its LMDB map size; nothing of the block being written was
    kept. Reopen with a larger ``--map-size`` to go on from the indexed tip."""


class SchedulerUnreachableError(IndexingError, ConnectionError):
    """No Dask scheduler answered at the given address in time."""


class WorkerLostError(IndexingError):
    """A chunk failed on every worker it was given to (workers kept dying)."""


class BlockMissingError(IndexingError, LookupError):
    """A block the index needs (to index or to undo) is not in the data folder."""


class QueryError(IndexingError, InputError):
    """A malformed ``--query`` value (not 64 hex digits, or an unknown kind)."""


# --- Chord -----------------------------------------------------------------------


class ChordError(PeerpoolError):
    """Base of the Chord DHT errors."""


class RingIdError(ChordError, InputError):
    """A ring id or key that is out of range or of the wrong size."""


class ChordMessageError(ChordError, InputError):
    """A ring-protocol message that cannot be decoded (truncated, over a limit,
    unknown version or kind, trailing bytes); ``offset`` says where."""


class ChordTypeError(ChordError, InputError, TypeError):
    """A key or value that is not ``str`` or bytes-like (or a str with no UTF-8)."""


class ValueTooLargeError(ChordError, InputError):
    """A key or value over its size limit, refused before it is copied or sent."""


class ChordKeyError(ChordError, KeyError):
    """The ring holds no value for the key (``pop``/``popitem`` without a default)."""


class NoMajorityError(ChordError, LookupError):
    """The five positions of a key did not agree: no value had more than two answers."""


class ChordLookupError(ChordError, ConnectionError):
    """No live node could be reached to route a request (every candidate failed)."""


class ChordTimeoutError(ChordError, TimeoutError):
    """An operation (get, set, join, ...) did not complete within its timeout."""


class ChordJoinError(ChordError, ConnectionError):
    """The bootstrap node could not be reached or did not answer as a ring member."""


class ChordStateError(ChordError):
    """An operation that the node's state does not allow (not started, stopped)."""


class ChordConfigError(ChordError, InputError):
    """A ring node's option out of its range (replicas, successors, id_choices)."""


# --- transports (peerpool.net) -------------------------------------------------


class NetError(PeerpoolError):
    """Base of the transport errors."""


class AddressError(NetError, InputError):
    """An address that cannot be parsed (bad host, port, or .onion name)."""


class DialError(NetError, ConnectionError):
    """A connection could not be made (refused, timed out, proxy or Tor failure)."""


class DialTimeoutError(DialError, TimeoutError):
    """The connection (TCP connect plus any proxy handshake) did not complete in time."""


class BannedPeerError(DialError):
    """The peer store has banned this peer; it is not dialed until the ban ends."""


class SocksError(DialError):
    """The SOCKS proxy could not be used or refused the request.

    ``code`` is the SOCKS5 reply code (RFC 1928, or Tor's 0xF0-0xF7), or the
    HTTP status of an HTTP CONNECT proxy, when the proxy sent one, else
    ``None``; ``reason`` says what it means in words.
    """

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or message


class SocksAuthError(SocksError):
    """The proxy rejected our username/password, or accepts none of our auth methods."""


class TorOnionError(SocksError):
    """Tor's extended SOCKS error (SocksPort ExtendedErrors, 0xF0-0xF7) for an onion."""


# --- pools (peerpool.pool) -------------------------------------------------------


class PoolError(PeerpoolError):
    """Base of the connection-pool errors."""


class UnknownNodeError(PoolError):
    """A node id that is not among the pool's configured addresses."""


class PoolClosedError(PoolError):
    """The pool was closed; it makes no new connections."""


class PoolConfigError(PoolError, InputError):
    """Named pools that cannot be built as configured (NamedPools, the mesh ConnectionPools)."""


class UnknownPoolError(PoolConfigError):
    """A pool name that is not one of the configured pools."""


class UnknownP2PError(PoolConfigError):
    """A pool refers to a P2P (network) name that was not given."""


class TooFewConnectionsError(PoolConfigError):
    """``max_connections`` is smaller than the number of pools."""


class PoolRatioError(PoolConfigError):
    """The positive pool ratios do not sum to 1 (within the tolerance), or a ratio is not a number."""


# --- JoinMarket ------------------------------------------------------------------


class JoinMarketError(PeerpoolError):
    """Base of the JoinMarket errors."""


class JoinMarketProtocolError(JoinMarketError, InputError):
    """A directory or peer sent a line that breaks the JoinMarket protocol."""


class LineTooLongError(JoinMarketProtocolError):
    """A line grew past the maximum length (checked before any parsing)."""


class MalformedLineError(JoinMarketProtocolError):
    """A line that is not the ``{"type", "line"}`` envelope, or a payload that cannot be parsed."""


class BadSignatureError(JoinMarketProtocolError):
    """A signed message whose signature fails, or whose public key does not hash to its nick."""


class HandshakeRejectedError(JoinMarketProtocolError):
    """A handshake that was refused or is unacceptable (app name, version, network, nick)."""


class NickAuthError(JoinMarketProtocolError):
    """JMP-0005 nick authentication failed (bad proof, wrong challenge, refused result)."""


class DirectoryConnectionError(JoinMarketError, ConnectionError):
    """A directory connection is not up, was closed, or did not answer in time."""


# --- Mesh (peerpool.mesh) --------------------------------------------------------


class MeshError(PeerpoolError):
    """Base of the mesh node's errors. The Rust side raises these by name
    (``rust/src/py/errors.rs``), with a message and an offset it leaves None."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class MeshIdentityError(MeshError, ValueError):
    """A key file that is not a libp2p Ed25519 private key (invalid, foreign, or unreadable)."""


class MeshAddressError(MeshError, InputError):
    """A multiaddr, peer id or protocol name that cannot be parsed or used."""


class MeshDialError(MeshError, ConnectionError):
    """A dial (or relay reservation) failed, timed out, or reached another peer id than asked."""


class MeshNotConnectedError(MeshError, ConnectionError):
    """A direct message to a peer we hold no connection to."""


class MeshFrameError(MeshError, InputError):
    """A chat frame over the limits (channel over 255 bytes, payload over the maximum)."""


class MeshRequestError(MeshError):
    """A request failed: not connected, refused, the remote handler failed, or it timed out."""


class MeshClosedError(MeshError):
    """The mesh node is stopped (or was never started)."""


# --- mesh pools: messages, tokens, roster, roles (peerpool.mesh) ------------------


class MeshMessageError(MeshError, InputError):
    """A ``Msg`` that cannot be decoded or built (bad protobuf, over the size limit, bad content)."""


class TokenError(MeshError, InputError):
    """A token that does not verify; ``reason`` is a short code ("expired", "forged", ...)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RosterError(MeshError, InputError):
    """A rendezvous roster that is not the JSON the world node publishes, or over its limits."""


class RoleError(MeshError, InputError):
    """A role bitmask that does not fit where it is used (a world agent without the world bit, ...)."""
