"""peer_verdict: what the end of a connection records against its peer."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerpool.bitcoin.peer_store import PeerStore
from peerpool.bitcoin.peer_verdict import ban_reason, record_end
from peerpool.errors import (
    ChecksumError,
    HandshakeError,
    PeerDisconnectedError,
    PeerStoreWriteError,
    PeerTimeoutError,
)

PEER = "127.0.0.1:8333"


@pytest.fixture
def store(tmp_path: Path) -> PeerStore:
    store = PeerStore(tmp_path, "bsv-regtest")
    store.record_failure(PEER)  # one failure already: a success resets it, a failure adds one
    return store


def failures(store: PeerStore) -> int:
    record = store.get(PEER)
    assert record is not None
    return record.failures


def test_only_violations_that_prove_the_peer_broken_are_reasons_to_ban() -> None:
    assert ban_reason(ChecksumError("bad sum")) == "ChecksumError: bad sum"
    assert ban_reason(HandshakeError("old version")) is None
    assert ban_reason(PeerTimeoutError("slow")) is None


def test_a_ban_reason_bans_whatever_the_error(store: PeerStore) -> None:
    record_end(store, PEER, None, ban_reason="bad pow", handshake_succeeded=True)
    assert store.is_banned(PEER)


@pytest.mark.parametrize(
    ("error", "handshake_succeeded", "expected_failures"),
    [
        (HandshakeError("x"), True, 2),  # a violation after the handshake: a failure
        (PeerTimeoutError("x"), True, 2),  # a timeout: a failure
        (PeerDisconnectedError("x"), False, 2),  # any end before the handshake: a failure
        (PeerDisconnectedError("x"), True, 0),  # the peer hung up after it: a success
        (None, True, 0),  # we closed it: a success
        (None, False, 1),  # we closed it before the handshake: nothing recorded
        (PeerStoreWriteError("disk full"), False, 1),  # the store's own failure: not written
    ],
)
def test_the_verdict_for_each_kind_of_end(
    store: PeerStore,
    error: BaseException | None,
    handshake_succeeded: bool,
    expected_failures: int,
) -> None:
    record_end(store, PEER, error, ban_reason=None, handshake_succeeded=handshake_succeeded)
    assert failures(store) == expected_failures
    assert not store.is_banned(PEER)
