"""Reprs and log lines show hashes as people do: hex, byte-reversed (display order)."""

from __future__ import annotations

import logging
import re

import pytest

from peerpool.bitcoin import BlockChunker
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.announcements import Announcement
from peerpool.bitcoin.blockfile import iter_blocks
from peerpool.bitcoin.handlers import Handlers
from peerpool.bitcoin.headers import hash_header
from peerpool.bitcoin.networks import get_network, sha256d
from tests.bitcoin.test_header_store import DATA

HASH = bytes(range(32))
SHOWN = HASH[::-1].hex()  # "1f1e...00"
BYTES_LITERAL = re.compile(r"\bb['\"]|\\x[0-9a-f]{2}")


def assert_readable(text: str) -> None:
    assert BYTES_LITERAL.search(text) is None, text


def test_inventory_reprs() -> None:
    item = msgs.InvVector(msgs.InvType.BLOCK, HASH)
    assert repr(item) == f"InvVector(BLOCK, {SHOWN})" and item.hash_hex == SHOWN
    assert repr(msgs.InvVector(77, HASH)) == f"InvVector(77, {SHOWN})"  # unknown type: its number
    inv = msgs.Inv(tuple(msgs.InvVector(msgs.InvType.TX, bytes([i]) * 32) for i in range(12)))
    text = repr(inv)
    assert text.startswith("Inv([InvVector(TX, 0000") and text.endswith(", ... 2 more])")
    assert_readable(text)
    assert repr(msgs.GetData((item,))) == f"GetData([InvVector(BLOCK, {SHOWN})])"
    assert repr(msgs.NotFound(())) == "NotFound([])"


def test_reject_repr() -> None:
    reject = msgs.Reject("tx", 0x10, "bad-txns-inputs-missingorspent", HASH)
    assert repr(reject) == f"Reject('tx', INVALID, 'bad-txns-inputs-missingorspent', {SHOWN})"
    assert repr(msgs.Reject("tx", 0x07, "odd")) == "Reject('tx', 0x07, 'odd')"


def test_headers_locator_and_tx_reprs() -> None:
    network = get_network("bsv-regtest")
    assert repr(msgs.Headers(network.genesis_header)) == (
        f"Headers(1 headers, {network.genesis_hash_hex} .. {network.genesis_hash_hex})"
    )
    getheaders = msgs.GetHeaders(70015, (HASH,))
    assert (
        repr(getheaders) == f"GetHeaders(version=70015, 1 locator hashes from {SHOWN}, stop=none)"
    )
    raw = bytes(60)
    assert repr(msgs.Tx(raw)) == f"Tx({sha256d(raw)[::-1].hex()}, 60 bytes)"
    announcement = Announcement(
        msgs.InvVector(msgs.InvType.TX, HASH), "127.0.0.1:1", "127.0.0.1:1#2"
    )
    assert repr(announcement) == f"Announcement(InvVector(TX, {SHOWN}) from 127.0.0.1:1#2)"
    assert announcement.hash_hex == SHOWN


def test_chunk_repr_names_its_block() -> None:
    block = next(iter_blocks(DATA / "277647.dat")).data
    [chunk, *_] = BlockChunker(len(block), chunk_size=40_000).feed(bytes(block))
    shown = hash_header(bytes(block[:80]))[::-1].hex()
    assert repr(chunk).startswith(f"Chunk({shown} 1/")
    assert_readable(repr(chunk))


async def test_handler_logs_show_readable_messages(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="peerpool.bitcoin")
    client = "peer 127.0.0.1:1"
    await Handlers().dispatch(msgs.Inv((msgs.InvVector(msgs.InvType.TX, HASH),)), client)  # type: ignore[arg-type]
    await Handlers().dispatch(msgs.Reject("block", 0x10, "bad", HASH), client)  # type: ignore[arg-type]
    text = caplog.text
    assert SHOWN in text and "Reject('block', INVALID" in text
    assert_readable(text)
