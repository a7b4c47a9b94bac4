"""Pure-Python Bitcoin kernels: the oracle in tests and the baseline in benches.

Written from the protocol's definitions (Bitcoin Core's serialize.h,
protocol.h, primitives/transaction.h, arith_uint256.cpp, pow.cpp and BSV's
extended message header) with hashlib and Python ints only. Obvious rather
than fast; nothing here is shared with the Rust kernels it checks.

Every rejection is a :class:`Rejected` with a ``kind`` and the ``offset`` in
the input where it happened, so tests can compare verdicts with the kernels.

One module per kernel family; this package re-exports them all, so
``from tests.reference import bitcoin as ref`` gives ``ref.scan_block`` etc.
"""

from tests.reference.bitcoin.blocks import (
    TxSpan,
    block_merkle_root,
    merkle_root,
    parse_tx,
    scan_block,
    tx_offsets,
    txid,
    txid_of,
)
from tests.reference.bitcoin.chunks import (
    ChunkSplitter,
    RefChunk,
    chunk_rule,
)
from tests.reference.bitcoin.common import (
    HEADER_LEN,
    MAX_U64,
    Rejected,
    sha256d,
)
from tests.reference.bitcoin.compact import (
    read_compact_size,
    write_compact_size,
)
from tests.reference.bitcoin.framing import (
    EXT_MARKER,
    EXTMSG,
    Event,
    MessageDecoder,
    checksum,
    command_field,
    encode_header,
    encode_message,
    merge_pieces,
    parse_command,
)
from tests.reference.bitcoin.headers import (
    bits_problem,
    check_headers,
    check_pow,
    get_compact,
    hash_header,
    set_compact,
)

__all__ = [
    "EXTMSG",
    "EXT_MARKER",
    "HEADER_LEN",
    "MAX_U64",
    "ChunkSplitter",
    "Event",
    "MessageDecoder",
    "RefChunk",
    "Rejected",
    "TxSpan",
    "bits_problem",
    "block_merkle_root",
    "check_headers",
    "check_pow",
    "checksum",
    "chunk_rule",
    "command_field",
    "encode_header",
    "encode_message",
    "get_compact",
    "hash_header",
    "merge_pieces",
    "merkle_root",
    "parse_command",
    "parse_tx",
    "read_compact_size",
    "scan_block",
    "set_compact",
    "sha256d",
    "tx_offsets",
    "txid",
    "txid_of",
    "write_compact_size",
]
