"""PeerStore: records, bans that expire, atomic writes that survive reopening."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerpool.bitcoin.peer_store import PeerStore
from peerpool.errors import InputError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_records_and_bans_persist_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    store = PeerStore(tmp_path, "bsv-regtest", clock=clock)
    store.record_failure("127.0.0.1:1")
    store.record_failure("127.0.0.1:1")
    store.record_connected("127.0.0.1:2")
    store.ban("127.0.0.1:3", "bad proof of work", seconds=60)
    assert (tmp_path / "peers.bsv-regtest.json").exists()
    again = PeerStore(tmp_path, "bsv-regtest", clock=clock)
    one = again.get("127.0.0.1:1")
    assert one is not None and one.failures == 2
    two = again.get("127.0.0.1:2")
    assert two is not None and two.last_connected == 1000.0
    assert again.is_banned("127.0.0.1:3")
    assert again.usable(["127.0.0.1:1", "127.0.0.1:3"]) == ["127.0.0.1:1"]
    clock.now += 61
    assert not again.is_banned("127.0.0.1:3")
    banned = again.get("127.0.0.1:3")
    assert banned is not None and banned.ban_reason == "bad proof of work"


def test_writes_leave_no_temporary_files_and_a_corrupt_file_is_a_typed_error(
    tmp_path: Path,
) -> None:
    store = PeerStore(tmp_path, "btc-regtest")
    for i in range(20):
        store.record_attempt(f"127.0.0.1:{i + 1}")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["peers.btc-regtest.json", "peers.btc-regtest.json.lock"]
    (tmp_path / "peers.btc-regtest.json").write_text("{not json")
    with pytest.raises(InputError):
        PeerStore(tmp_path, "btc-regtest")


def test_remembered_peers_are_listed_and_persist_without_touching_known_ones(
    tmp_path: Path,
) -> None:
    store = PeerStore(tmp_path, "bsv-regtest")
    store.record_failure("127.0.0.1:1")
    added = store.remember(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:2"])
    assert added == ["127.0.0.1:2", "127.0.0.1:3"]
    record = store.get("127.0.0.1:1")
    assert record is not None and record.failures == 1  # a known record is left as it was
    again = PeerStore(tmp_path, "bsv-regtest")
    assert again.peers() == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    # the limit counts every record: a flood of addresses does not grow the file
    assert again.remember(["127.0.0.1:4", "127.0.0.1:5"], limit=4) == ["127.0.0.1:4"]
    assert len(again) == 4 and again.remember([]) == []
