"""Bitcoin P2P message framing (the Rust kernel, re-exported with its contract).

``encode_message(magic, command, payload)`` frames a payload with the 24-byte
header (or BSV's 44-byte extended header for payloads of 4 GiB and more).
``encode_header`` gives just the header, for streaming a payload that does not
fit in memory. ``MessageDecoder(magic, max_payload, large_threshold).feed(data)``
returns events in stream order:

* :class:`Message` ``(command, payload)``: a complete message under the threshold;
* :class:`LargeMessageStart` ``(command, length)``, then :class:`LargeMessagePiece`
  ``(data)`` as the payload arrives, then :class:`LargeMessageEnd` ``(command,
  length)`` once it is complete and its checksum verified.

Given ``block_chunk_size``, a streamed ``block`` of at least
``min_chunked_block`` bytes is cut by the chunk splitter inside the decoder,
from the very bytes fed to it: :class:`LargeMessageStart`, then
:class:`~peerpool.bitcoin.blocks.Chunk` s, then :class:`LargeBlockEnd` (hash,
header, size, tx_count, num_chunks). A block that is not a block raises a
:class:`~peerpool.errors.BlockFormatError` with its offset in the block.

Errors are distinct subclasses of :class:`peerpool.errors.BitcoinProtocolError`:
``BadMagicError``, ``ChecksumError``, ``PayloadTooLargeError``,
``MalformedCommandError`` (and ``MalformedMessageError`` for a broken extended
header). An error does not lose what came before it: the exception's
``events`` attribute is the list of events the same ``feed`` call decoded
before the bad bytes, in stream order, which the caller should handle before
the error (they arrived intact: ``feed(ping + ping + bad checksum)`` raises
``ChecksumError`` with both pings in ``events``). A decoder that raised stays
failed: the stream cannot be resynchronised, and every later ``feed`` raises
the same error again, with no events.
"""

from __future__ import annotations

from peerpool._core import (
    Chunk,
    LargeBlockEnd,
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    Message,
    MessageDecoder,
    checksum,
    encode_header,
    encode_message,
)

HEADER_LEN = 24
EXT_HEADER_LEN = 44
#: Payloads of this length or more need BSV's extended header.
EXTENDED_PAYLOAD_THRESHOLD = 0xFFFF_FFFF

DecoderEvent = (
    Message | LargeMessageStart | LargeMessagePiece | LargeMessageEnd | Chunk | LargeBlockEnd
)

__all__ = [
    "EXTENDED_PAYLOAD_THRESHOLD",
    "EXT_HEADER_LEN",
    "HEADER_LEN",
    "DecoderEvent",
    "LargeBlockEnd",
    "LargeMessageEnd",
    "LargeMessagePiece",
    "LargeMessageStart",
    "Message",
    "MessageDecoder",
    "checksum",
    "encode_header",
    "encode_message",
]
