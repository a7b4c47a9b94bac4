"""The keepalive loop of a :class:`~peerpool.bitcoin.client.BitcoinClient`.

A ``ping`` every ``client.ping_interval``; the connection is dropped with
:class:`~peerpool.errors.PeerTimeoutError` when no matching ``pong`` comes
within ``client.ping_timeout``, unless the peer is still active (a message in
flight whose bytes keep coming, or a handler of ours busy: a pong queued
behind a 4 GB block reaches us only after the block). Kept apart from the
client so that its file stays about the connection itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from peerpool.bitcoin import messages as msgs
from peerpool.errors import PeerpoolError, PeerTimeoutError

if TYPE_CHECKING:
    from peerpool.bitcoin.client import BitcoinClient

log = logging.getLogger(__name__)


async def keep_alive(client: BitcoinClient) -> None:
    """Ping ``client``'s peer until the connection ends (see the module);
    ends the connection itself on a missed pong. Never raises but for
    cancellation."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.sleep(client.ping_interval)
            client._pong.clear()
            client._pong_nonce = secrets.randbits(64)
            sent_at = loop.time()
            await client.send_message(msgs.Ping(client._pong_nonce))
            while not client._pong.is_set():
                # asyncio.wait, not wait_for: before Python 3.12 wait_for can
                # swallow a cancellation that races with the event being set
                waiter = asyncio.ensure_future(client._pong.wait())
                try:
                    await asyncio.wait({waiter}, timeout=client.ping_timeout)
                finally:
                    waiter.cancel()
                if client._pong.is_set():
                    break
                now = loop.time()
                if now - sent_at >= client.ping_timeout and not client._peer_active(
                    now, client.ping_timeout
                ):
                    raise PeerTimeoutError(f"{client}: no pong within {client.ping_timeout:g} s")
    except asyncio.CancelledError:
        raise
    except PeerTimeoutError as exc:
        log.warning("%s", exc)
        await client._abort(exc)
    except PeerpoolError as exc:  # the connection went away under the ping
        log.debug("%s: keepalive stopped: %s", client, exc)
