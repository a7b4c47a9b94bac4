"""``LargeMessageGatherer``: the message the decoder is streaming, gathered.

The decoder streams a message whose payload is too large to hand over at
once (``LargeMessageStart``, pieces or chunks, an end). What becomes of it
depends on the size policy of :class:`~peerpool.bitcoin.protocol_config.ProtocolConfig`:

* a block at or above ``large_message_limit`` is never held whole: the
  decoder cuts it into chunks, which pass on at once; only their transaction
  offsets are kept, for the one LARGE :class:`~peerpool.bitcoin.received.Block`
  at its end;
* any other streamed message (a block under that limit, or a non-block
  message above the decoder's threshold) is gathered whole and decoded like
  a small one, after its size was checked at its header and, for non-block
  messages, its bytes reserved in the manager's payload budget.

Apart from :mod:`peerpool.bitcoin.protocol`, which keeps the handshake and
the order of events: this is the bookkeeping of one message's bytes (sizes,
offsets, budget), and it holds at most one message, as the stream does.
Sans-I/O like the protocol: no asyncio, no clock.
"""

from __future__ import annotations

import numpy as np

from peerpool.bitcoin.blocks import Chunk, tx_offsets
from peerpool.bitcoin.budget import PayloadBudget
from peerpool.bitcoin.headers import hash_header
from peerpool.bitcoin.messages.framing import LargeBlockEnd
from peerpool.bitcoin.protocol_config import ProtocolConfig
from peerpool.bitcoin.received import Block, BlockKind
from peerpool.errors import (
    BlockFormatError,
    MalformedMessageError,
    PayloadBudgetExceededError,
    PayloadTooLargeError,
)

__all__ = ["LargeMessageGatherer", "check_block_size", "check_message_size", "small_block"]


class _LargeBlock:
    """A block the decoder is cutting into chunks: their offsets so far."""

    def __init__(self) -> None:
        self.offsets: list[np.ndarray] = []


class _LargeOther:
    """A message the decoder streamed that is delivered whole: a non-block
    message above the decoder's threshold, or a block under large_message_limit."""

    def __init__(self, command: str, length: int) -> None:
        self.command = command
        self.buffer = bytearray()
        self.length = length


def check_block_size(config: ProtocolConfig, length: int) -> None:
    """Raise PayloadTooLargeError for a block above ``config.max_block_size``."""
    if length > config.max_block_size:
        raise PayloadTooLargeError(
            f"'block' payload of {length} bytes exceeds the maximum of {config.max_block_size}"
        )


def check_message_size(config: ProtocolConfig, command: str, length: int) -> None:
    """Raise PayloadTooLargeError for a non-block payload above ``config.max_message_size``."""
    if length > config.max_message_size:
        raise PayloadTooLargeError(
            f"'{command}' payload of {length} bytes exceeds the maximum of "
            f"{config.max_message_size} for messages other than blocks"
        )


def small_block(payload: bytes, segwit: bool) -> Block:
    """A SMALL ``Block`` of a whole block payload, with its transaction
    offsets; raises MalformedMessageError if the payload is no block."""
    try:
        offsets = tx_offsets(payload, segwit)
    except BlockFormatError as exc:
        raise MalformedMessageError(f"block: {exc}", offset=exc.offset) from exc
    header = payload[:80]
    return Block(
        kind=BlockKind.SMALL,
        hash=hash_header(header),
        header=header,
        size=len(payload),
        tx_count=len(offsets),
        tx_offsets=offsets,
        raw=payload,
    )


class LargeMessageGatherer:
    """The one streamed message of a connection, from its start to its end."""

    def __init__(self, config: ProtocolConfig, budget: PayloadBudget | None) -> None:
        self._config = config
        self._budget = budget
        self._large: _LargeBlock | _LargeOther | None = None
        self._reserved = 0  # of the budget, for the message being gathered

    def start(self, command: str, length: int) -> None:
        """A streamed message begins: check its size (and reserve a non-block
        message's bytes in the budget) before any of it is buffered."""
        config = self._config
        if command == "block" and length >= config.large_message_limit:
            check_block_size(config, length)
            self._large = _LargeBlock()  # the decoder cuts it into chunks
            return
        if command == "block":
            check_block_size(config, length)
        else:
            check_message_size(config, command, length)
            self._reserve(command, length)
        self._large = _LargeOther(command, length)

    def _reserve(self, command: str, length: int) -> None:
        budget = self._budget
        if budget is None:
            return
        if not budget.try_reserve(length):
            raise PayloadBudgetExceededError(
                f"'{command}' payload of {length} bytes: the budget of {budget.limit} bytes "
                f"for non-block messages across connections has {budget.free} left"
            )
        self._reserved = length

    def release_budget(self) -> None:
        """Give back what the message being gathered reserved (it ended, or
        the connection did). Idempotent."""
        if self._budget is not None and self._reserved:
            self._budget.release(self._reserved)
        self._reserved = 0

    def drop(self) -> None:
        """Forget the message (the stream failed) and give back its reservation."""
        self._large = None
        self.release_budget()

    def chunk(self, chunk: Chunk) -> None:
        """Keep a chunk's offsets for the LARGE block it belongs to."""
        if not isinstance(self._large, _LargeBlock):  # the decoder's contract
            raise MalformedMessageError("a block chunk outside a large block")
        self._large.offsets.append(chunk.tx_offsets)

    def piece(self, data: bytes) -> None:
        """Bytes of a message gathered whole (a chunked block has none)."""
        if isinstance(self._large, _LargeOther):
            self._large.buffer += data

    def block_end(self, end: LargeBlockEnd) -> Block:
        """The LARGE ``Block`` of a chunked block, with every chunk's offsets."""
        large, self._large = self._large, None
        offsets = large.offsets if isinstance(large, _LargeBlock) else []
        all_offsets = np.concatenate(offsets) if offsets else np.empty(0, dtype=np.uint64)
        return Block(
            kind=BlockKind.LARGE,
            hash=end.hash,
            header=end.header,
            size=end.size,
            tx_count=end.tx_count,
            tx_offsets=all_offsets,
            num_chunks=end.num_chunks,
        )

    def end(self) -> tuple[str, bytes] | None:
        """A message gathered whole is complete: its command and payload, its
        reservation released (the decoded message is the caller's now). None
        if nothing was being gathered."""
        large, self._large = self._large, None
        if not isinstance(large, _LargeOther):
            return None
        payload = bytes(large.buffer)
        large.buffer = bytearray()
        self.release_budget()
        return large.command, payload
