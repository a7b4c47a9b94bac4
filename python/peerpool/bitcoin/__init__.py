"""Bitcoin and Bitcoin SV: kernels, wire protocol, peer clients, header and peer stores."""

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
from peerpool.bitcoin.framing import (
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    Message,
    MessageDecoder,
    encode_header,
    encode_message,
)
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
