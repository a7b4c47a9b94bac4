"""The reader task of a :class:`~peerpool.bitcoin.client.BitcoinClient`.

One task per connection reads, feeds the protocol core and dispatches each
event in arrival order, waiting for each handler before reading on: the
backpressure reaches the peer through TCP, and memory stays bounded by one
read plus one chunk. While a message is partly received, each wait for the
socket is bounded by the minimum rate (:mod:`peerpool.bitcoin.stall`); a
peer below it is dropped with :class:`~peerpool.errors.PeerTimeoutError`.

Whatever ends the stream (the peer closing it, a protocol violation, a
timeout, a handler's bug) ends the connection through the client, with
violations that prove the peer broken marked for a ban. Kept apart from the
client, as its keepalive is, so that the client's file stays about the
connection's life and its requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.handlers import Mode
from peerpool.bitcoin.peer_verdict import ban_reason
from peerpool.bitcoin.protocol import HandshakeComplete
from peerpool.bitcoin.received import Block
from peerpool.errors import (
    BitcoinProtocolError,
    PeerDisconnectedError,
    PeerpoolError,
    PeerTimeoutError,
)

if TYPE_CHECKING:
    from peerpool.bitcoin.client import BitcoinClient

log = logging.getLogger(__name__)


async def read_until_closed(client: BitcoinClient, reader: asyncio.StreamReader) -> None:
    """Read ``client``'s peer until the stream ends, then end the connection
    with the reason (see the module). Never raises but for cancellation."""
    loop = asyncio.get_running_loop()
    protocol = client.protocol
    error: BaseException | None = None
    try:
        while (data := await _read(client, reader, loop)) != b"":
            if data is None:  # a window of waiting passed at a rate that is fine
                continue
            client._last_activity = loop.time()
            protocol.receive_data(data)
            await _dispatch_all(client)
            if not protocol.in_message:
                client._stall.reset()
        protocol.receive_eof()
        await _dispatch_all(client)
        error = PeerDisconnectedError(f"{client}: the peer closed the connection")
    except asyncio.CancelledError:
        raise
    except BitcoinProtocolError as exc:
        error = exc
        reason = ban_reason(exc)
        if reason is not None:
            client._ban_reason = reason
        log.warning("%s: protocol violation: %s", client, exc)
        try:
            await _dispatch_all(client)  # what arrived intact before the violation
        except asyncio.CancelledError:
            raise
        except Exception as late:  # the connection ends for the violation all the same
            log.warning("%s: while handling what came before it: %s", client, late)
    except PeerpoolError as exc:
        error = exc
    except OSError as exc:
        error = PeerDisconnectedError(f"{client}: {exc}")
    except Exception as exc:  # a handler's bug: the connection cannot go on
        log.exception("%s: handler raised", client)
        error = exc
    await client._abort(error)


async def _read(
    client: BitcoinClient, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop
) -> bytes | None:
    """The next bytes (b"" at the end of the stream); mid-message, a wait
    is bounded by the minimum rate (None: the window passed, no bytes)."""
    stall = client._stall
    if not (stall.enabled and client.protocol.in_message):
        return await reader.read(client.read_size)
    started = loop.time()
    try:
        data = await asyncio.wait_for(reader.read(client.read_size), stall.time_left())
    except asyncio.TimeoutError:
        data = None
    rate = stall.waited(loop.time() - started, len(data or b""))
    if rate is not None:
        raise PeerTimeoutError(
            f"{client}: a message in flight arrives at {rate:.1f} B/s, below the "
            f"minimum of {stall.min_rate:g} B/s (after "
            f"{client.protocol.bytes_received} bytes)"
        )
    return data


async def _dispatch_all(client: BitcoinClient) -> None:
    for event in client.protocol.events_received():
        client._busy = True
        try:
            await _dispatch(client, event)
        finally:
            client._busy = False
            # time our handler held the bytes up is not the peer's silence
            client._last_activity = asyncio.get_running_loop().time()
    await client._flush()  # pongs and other replies the core queued


async def _dispatch(client: BitcoinClient, event: object) -> None:
    high = client.mode is Mode.HIGH_LEVEL
    if isinstance(event, Chunk):
        await client.handlers.on_block_chunk(event, client)
        if high:
            await client.requests.on_chunk(event)
    elif isinstance(event, Block):
        await client.handlers.on_block(event, client)
        if high:
            client.requests.on_block(event)
    elif isinstance(event, HandshakeComplete):
        # recorded here, before anything after the handshake is handled, so
        # that a failure of this same connection is recorded after it
        if client.peer_store is not None:
            client.peer_store.record_connected(client.peer)
        handshake = client._handshake
        if handshake is not None and not handshake.done():
            handshake.set_result(event.version)
    elif isinstance(event, msgs.Message):
        await client.handlers.dispatch(event, client)
        if isinstance(event, msgs.Pong) and event.nonce == client._pong_nonce:
            client._pong.set()
        if high:
            client.requests.on_message(event)
        if client.manager is not None:  # addresses, for discovery
            client.manager.note_message(event, client)
