"""What a connection delivers to the application: ``Block`` (defined in
:mod:`peerpool.bitcoin.received`), and the ``Handlers`` it calls.

One :class:`Handlers` instance serves every connection of a manager. The
client calls ``on_<command>(message, client)`` for each message in the order
it arrived on the connection (``on_block(block, client)`` for blocks, and for
a large block ``on_block_chunk(chunk, client)`` once per chunk first), and
waits for each call before reading on: a slow handler slows its own
connection down, never another. A handler must therefore not await a
request/response helper (``get_headers``, ``get_block``, ...) *of the same
connection*: the answer could only be read after the handler returns. Start a
task for that instead.

The version handshake, the answers to ``ping`` and the polite reply to
``sendcmpct`` are done by the protocol core (:mod:`peerpool.bitcoin.protocol`),
so no override can break them; the base methods here only log.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from peerpool.bitcoin.blocks import Chunk, hash_hex

# re-exported: the received block types lived here before the protocol core
# needed them without importing the application layer
from peerpool.bitcoin.received import Block as Block
from peerpool.bitcoin.received import BlockKind as BlockKind

if TYPE_CHECKING:
    from peerpool.bitcoin.client import BitcoinClient
    from peerpool.bitcoin.manager import ClientManager
    from peerpool.bitcoin.messages.wire import Message

log = logging.getLogger(__name__)


class Mode(enum.Enum):
    """HIGH_LEVEL: the client also feeds internal queues, so that
    ``get_headers``/``get_block``/``broadcast_transaction`` and the
    announcement queues (``block_queue``, ``tx_queue``, the manager's) work.
    LOW_LEVEL: messages only go to the handlers; those helpers raise
    :class:`~peerpool.errors.ModeError`."""

    HIGH_LEVEL = "high-level"
    LOW_LEVEL = "low-level"


class Handlers:
    """Override the ``on_*`` methods you need; the rest log at debug level.

    ``manager`` is set by the :class:`~peerpool.bitcoin.ClientManager` that
    uses this instance (None for a lone client), so a handler can reach both
    the connection it was called for and every other one.
    """

    manager: ClientManager | None = None

    async def dispatch(self, message: Message, client: BitcoinClient) -> None:
        """Call ``on_<command>`` for ``message`` (``on_unknown`` when there is none)."""
        method = getattr(self, f"on_{message.COMMAND}", None) if message.COMMAND else None
        if method is None:
            await self.on_unknown(message, client)
        else:
            await method(message, client)

    async def _log(self, message: Any, client: BitcoinClient) -> None:
        """Log the message at debug level: what every ``on_<command>`` does unless overridden."""
        log.debug("%s: %r", client, message)

    # The handshake and the ping/sendcmpct answers are the protocol core's (see above).
    on_version = on_verack = on_ping = on_pong = _log
    on_sendheaders = on_sendcmpct = on_feefilter = on_protoconf = on_authch = _log
    on_wtxidrelay = on_sendaddrv2 = on_addr = on_addrv2 = on_getaddr = _log
    on_inv = on_getdata = on_notfound = on_headers = on_getheaders = on_getblocks = _log
    on_tx = on_mempool = on_reject = on_unknown = _log

    async def on_block(self, block: Block, client: BitcoinClient) -> None:
        """A block arrived on ``client``'s connection: whole (``BlockKind.SMALL``,
        ``block.raw`` holds it) or, for a ``LARGE`` one, after all its chunks went to
        ``on_block_chunk`` (``block.raw`` is None, ``block.tx_offsets`` covers the
        whole block). Override it; the base method logs. An exception raised here
        ends the connection.
        """
        log.debug("%s: %r", client, block)

    async def on_block_chunk(self, chunk: Chunk, client: BitcoinClient) -> None:
        """One chunk of whole transactions of a large block, in order (``chunk.chunk_num``
        of ``chunk.num_chunks``); ``on_block`` follows the last one. Hand the chunk on
        (to a worker process, a sink) before returning: the next is read only then.
        """
        log.debug(
            "%s: chunk %d/%d of block %s",
            client, chunk.chunk_num + 1, chunk.num_chunks, hash_hex(chunk.block_hash),
        )  # fmt: skip
