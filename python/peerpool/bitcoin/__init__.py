"""Bitcoin and Bitcoin SV: kernels, wire protocol, peer clients, header and peer stores."""

from peerpool.bitcoin.blocks import (
    DEFAULT_CHUNK_SIZE,
    BlockChunker,
    Chunk,
    TxScanner,
    block_txids,
    merkle_root,
    merkle_root_matches,
    transaction_txids,
    tx_offsets,
)
from peerpool.bitcoin.framing import (
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    Message,
    MessageDecoder,
    encode_header,
    encode_message,
)
from peerpool.bitcoin.headers import (
    BlockHeader,
    bits_to_target,
    check_headers,
    check_pow,
    hash_header,
    hash_headers,
    target_to_bits,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BlockChunker",
    "BlockHeader",
    "Chunk",
    "LargeMessageEnd",
    "LargeMessagePiece",
    "LargeMessageStart",
    "Message",
    "MessageDecoder",
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
    "target_to_bits",
    "transaction_txids",
    "tx_offsets",
]
