"""Bitcoin and Bitcoin SV: kernels, wire protocol, peer clients, header and peer stores.

The modules, by layer, from the bytes up:

* Kernels (Rust underneath): ``blocks`` (transaction offsets, chunks, txids,
  merkle roots) and ``headers`` (header fields, hashes, targets, proof of work).
* Codecs: the ``messages`` subpackage, payload codecs (``messages.wire``,
  ``.control``, ``.inventory``, ``.addr``, ``.bsv``) and the envelope around
  them (``messages.framing``).
* Sans-I/O protocol: ``protocol`` (one connection's state machine), its
  settings ``protocol_config`` and its ``large_messages``, with ``handlers``,
  ``received``, ``pending``, ``stall``, ``budget``, ``peer_verdict`` and
  ``peer_discovery``; ``networks`` names the networks it speaks to.
* Client and manager (asyncio): ``client`` with its ``reader`` and
  ``keepalive`` for one peer, ``manager`` for many, with ``announcements``,
  ``peer_finder``, ``download`` and ``sync`` (header sync) on top.
* Header store: the ``header_store`` subpackage, ``HeadersStore`` over
  ``header_store.records`` (with its ``hash_index``) and ``forks``; its file
  format is ``header_store.format``, and ``migrate`` converts the old format.
* Files: ``peer_store`` (known peers), ``sink`` (downloaded blocks on disk),
  ``blockfile`` (reading ``blkNNNNN.dat``); the ``peerpool scan`` and
  ``peerpool sync`` commands are ``scan``, ``sync_command`` and ``commands``.
"""

from peerpool.bitcoin.blocks import (
    DEFAULT_CHUNK_SIZE,
    BlockChunker,
    Chunk,
    TxScanner,
    block_txids,
    merkle_root,
    merkle_root_matches,
    release_chunk_buffers,
    transaction_txids,
    tx_offsets,
)
from peerpool.bitcoin.client import BitcoinClient
from peerpool.bitcoin.handlers import Handlers, Mode
from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.headers import (
    BlockHeader,
    bits_to_target,
    check_headers,
    check_pow,
    hash_header,
    hash_headers,
    target_to_bits,
)
from peerpool.bitcoin.manager import ClientManager
from peerpool.bitcoin.messages.framing import (
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    Message,
    MessageDecoder,
    encode_header,
    encode_message,
)
from peerpool.bitcoin.peer_store import PeerStore
from peerpool.bitcoin.received import Block, BlockKind

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BitcoinClient",
    "Block",
    "BlockChunker",
    "BlockHeader",
    "BlockKind",
    "Chunk",
    "ClientManager",
    "Handlers",
    "HeadersStore",
    "LargeMessageEnd",
    "LargeMessagePiece",
    "LargeMessageStart",
    "Message",
    "MessageDecoder",
    "Mode",
    "PeerStore",
    "TxScanner",
    "bits_to_target",
    "block_txids",
    "check_headers",
    "check_pow",
    "encode_header",
    "encode_message",
    "hash_header",
    "hash_headers",
    "merkle_root",
    "merkle_root_matches",
    "release_chunk_buffers",
    "target_to_bits",
    "transaction_txids",
    "tx_offsets",
]
