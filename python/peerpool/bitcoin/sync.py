"""Header sync: from a peer to its tip, then staying at the tip, reorg-aware.

:func:`sync_headers` asks one peer for headers from the store's locator until
it has no more, connecting each batch into a
:class:`~peerpool.bitcoin.header_store.HeadersStore`. :func:`follow_tips`
then waits for block announcements (or polls) and yields every change of the
best tip, with the reorg report when the best chain moved to another branch.

A header that fails linkage or proof of work proves the peer broken or
hostile: it is banned and dropped (``BitcoinClient.misbehaving``) and the
error re-raised; the valid headers before it stay in the store, and nothing
that was there is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.client import BitcoinClient
from peerpool.bitcoin.header_store import ConnectResult, HeadersStore
from peerpool.errors import BadHeaderError, HeaderError, OrphanHeadersError

log = logging.getLogger(__name__)

#: How often follow_tips asks for headers when no announcement came: a
#: missed inv must not leave an indexer behind for long.
DEFAULT_POLL_INTERVAL = 30.0

Progress = Callable[[ConnectResult], None]

_BLOCK_INV = frozenset({msgs.InvType.BLOCK, msgs.InvType.CMPCT_BLOCK, msgs.InvType.WITNESS_BLOCK})


async def sync_headers(
    client: BitcoinClient, store: HeadersStore, *, progress: Progress | None = None
) -> list[ConnectResult]:
    """Fetch headers from ``client`` until it has no more; return the results
    of the batches that changed the best tip (``store.tip`` is where it ended)."""
    changes: list[ConnectResult] = []
    orphans = 0
    while True:
        answer = await client.get_headers(store.locator())
        if answer.count == 0:
            return changes
        try:
            result = store.connect(answer.headers)
        except BadHeaderError as exc:
            await client.misbehaving(f"bad header ({exc.reason})", exc)
            raise
        except OrphanHeadersError as exc:
            # A headers message must start after a hash of our locator (genesis
            # is always in it); an announcement that raced our request may not.
            orphans += 1
            if orphans > 1:
                raise HeaderError(f"{client}: headers that do not connect to our chain") from exc
            continue
        orphans = 0
        if progress is not None:
            progress(result)
        if result.tip_changed:
            changes.append(result)
        if answer.count < msgs.MAX_HEADERS or result.added == 0:
            return changes  # a short batch: the peer's tip (or nothing new from it)


async def follow_tips(
    client: BitcoinClient,
    store: HeadersStore,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> AsyncIterator[ConnectResult]:
    """Sync to the peer's tip, then yield each change of the best tip for as
    long as the connection lasts (its end raises PeerDisconnectedError).

    Each result has the new ``tip``; ``reorg`` is set when the best chain
    moved to another branch (old tip, new tip, common ancestor, hashes
    disconnected and connected). Block announcements are taken from the
    client's ``block_queue``, so its ``tx_queue`` stays free for a mempool
    watcher on the same client; use one follower per client.
    """
    for change in await sync_headers(client, store):
        yield change
    queue = client.block_queue
    while True:
        await _next_block_announcement(queue, poll_interval)
        for change in await sync_headers(client, store):
            yield change


async def _next_block_announcement(
    queue: asyncio.Queue[msgs.InvVector], poll_interval: float
) -> None:
    """Return at the next block announcement (draining the queue) or after
    ``poll_interval`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + poll_interval
    while (remaining := deadline - loop.time()) > 0:
        getter = asyncio.ensure_future(queue.get())
        try:
            done, _ = await asyncio.wait({getter}, timeout=remaining)
        finally:
            getter.cancel()
        if not done:
            return
        item = getter.result()
        if item.kind in _BLOCK_INV:
            while not queue.empty():  # one sync answers every announcement so far
                queue.get_nowait()
            return
