"""HIGH_LEVEL request matching and Handlers dispatch, without a connection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.handlers import Block, BlockKind, Handlers
from peerpool.bitcoin.pending import PendingRequests
from peerpool.errors import BlockNotFoundError, PeerDisconnectedError
from tests.bitcoin.chain import mine_chain
from tests.bitcoin.test_protocol import BSV

H1, H2, H3 = (bytes([i]) * 32 for i in (1, 2, 3))


def block_with_hash(block_hash: bytes) -> Block:
    return Block(BlockKind.SMALL, block_hash, bytes(80), 81, 0, np.empty(0, np.uint64), raw=b"")


async def test_headers_answer_the_waiter_and_announcements_go_to_the_queue() -> None:
    pending = PendingRequests(10)
    waiter = pending.expect_headers()
    answer = msgs.Headers(mine_chain(BSV.genesis_header, 2))
    pending.on_message(answer)
    assert waiter.result() is answer and pending.block_queue.empty()
    # not asked for: BIP130 announcements become block inventory
    announced = mine_chain(BSV.genesis_header, 1, tag=5)
    pending.on_message(msgs.Headers(announced))
    item = pending.block_queue.get_nowait()
    assert item.kind == msgs.InvType.BLOCK and len(item.hash) == 32
    assert pending.tx_queue.empty()


async def test_blocks_and_transactions_go_to_separate_queues() -> None:
    pending = PendingRequests(10)
    block, tx = msgs.InvVector(msgs.InvType.BLOCK, H1), msgs.InvVector(msgs.InvType.TX, H2)
    pending.on_message(msgs.Inv((block, tx)))
    assert pending.block_queue.get_nowait() == block and pending.block_queue.empty()
    assert pending.tx_queue.get_nowait() == tx and pending.tx_queue.empty()
    # the combined queue exists from its first use on, and gets both kinds
    combined = pending.inv_queue
    pending.on_message(msgs.Inv((block, tx)))
    assert [combined.get_nowait() for _ in range(2)] == [block, tx]
    assert pending.block_queue.qsize() == pending.tx_queue.qsize() == 1


async def test_inv_queue_is_bounded_and_drops_the_oldest() -> None:
    pending = PendingRequests(2)
    items = [msgs.InvVector(msgs.InvType.TX, h) for h in (H1, H2, H3)]
    pending.on_message(msgs.Inv(tuple(items)))
    assert pending.inv_dropped == 1
    assert [pending.tx_queue.get_nowait() for _ in range(2)] == items[1:]
    # an unknown inventory type is not queued
    pending.on_message(msgs.Inv((msgs.InvVector(99, H1),)))
    assert pending.tx_queue.empty() and pending.block_queue.empty()


async def test_blocks_and_notfound_resolve_by_hash() -> None:
    pending = PendingRequests(10)
    first = pending.expect_block(H1, None)
    second = pending.expect_block(H2, None)
    assert pending.expect_block(H1, None) is first  # a second caller shares the request
    pending.on_block(block_with_hash(H1))
    assert first.future.result().hash == H1
    pending.on_message(msgs.NotFound((msgs.InvVector(msgs.InvType.BLOCK, H2),)))
    with pytest.raises(BlockNotFoundError):
        second.future.result()


async def test_rejects_match_by_txid_or_carry_none() -> None:
    pending = PendingRequests(10)
    one, two = pending.expect_reject(H1), pending.expect_reject(H2)
    pending.on_message(msgs.Reject("tx", 0x10, "bad", H2))
    assert two.future.result().data == H2 and not one.future.done()
    pending.on_message(msgs.Reject("block", 0x10, "bad", H1))  # not about a transaction
    assert not one.future.done()
    pending.on_message(msgs.Reject("tx", 0x01, "error parsing message"))
    assert one.future.result().code == 0x01


async def test_watch_sees_announcements_without_taking_them() -> None:
    pending = PendingRequests(10)
    watch = pending.watch(H3)
    pending.on_message(msgs.Inv((msgs.InvVector(msgs.InvType.TX, H3),)))
    assert watch.done() and pending.tx_queue.qsize() == 1


async def test_fail_all_reaches_every_waiter() -> None:
    pending = PendingRequests(10)
    futures = [
        pending.expect_headers(),
        pending.expect_block(H1, None).future,
        pending.expect_reject(H2).future,
        pending.watch(H3),
    ]
    pending.fail_all(PeerDisconnectedError("gone"))
    assert all(isinstance(f.exception(), PeerDisconnectedError) for f in futures)
    assert not pending.blocks and not pending.broadcasts and not pending.watched


class Recording(Handlers):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    async def on_ping(self, message: Any, client: Any) -> None:
        self.seen.append(("ping", message))

    async def on_unknown(self, message: Any, client: Any) -> None:
        self.seen.append(("unknown", message))


async def test_handlers_dispatch_by_command() -> None:
    handlers = Recording()
    client: Any = object()
    await handlers.dispatch(msgs.Ping(1), client)
    await handlers.dispatch(msgs.UnknownMessage("dispatch", b""), client)  # no on_dispatch call
    await handlers.dispatch(msgs.Pong(1), client)  # the base class logs it
    assert handlers.seen == [
        ("ping", msgs.Ping(1)),
        ("unknown", msgs.UnknownMessage("dispatch", b"")),
    ]
