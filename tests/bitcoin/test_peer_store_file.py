"""PeerStore's file: validated on open, never blocking on a FIFO, typed errors
for a wrong path or a full disk, and two processes writing at once losing
nothing (a lock, and a merge with what is on disk)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from peerpool.bitcoin.peer_store import PeerStore
from peerpool.errors import InputError, PeerStoreFormatError, PeerStoreWriteError
from tests.bitcoin.full_disk import full_disk

NET = "bsv-regtest"


def store_file(folder: Path) -> Path:
    return folder / f"peers.{NET}.json"


def good_record(**change: Any) -> dict[str, Any]:
    record = {
        "last_connected": 1.0,
        "last_attempt": 2.0,
        "failures": 0,
        "banned_until": None,
        "ban_reason": None,
    }
    record.update(change)
    return record


BAD_FILES = {
    "peers is a list": {"version": 1, "peers": []},
    "top level is a list": [1, 2],
    "version 99": {"version": 99, "peers": {}},
    "no version": {"peers": {}},
    "record is a string": {"version": 1, "peers": {"a:1": "x"}},
    "failures is a string": {"version": 1, "peers": {"a:1": good_record(failures="3")}},
    "failures is negative": {"version": 1, "peers": {"a:1": good_record(failures=-1)}},
    "failures is a bool": {"version": 1, "peers": {"a:1": good_record(failures=True)}},
    "time is a list": {"version": 1, "peers": {"a:1": good_record(banned_until=[1])}},
    "reason is a number": {"version": 1, "peers": {"a:1": good_record(ban_reason=5)}},
    "unknown field": {"version": 1, "peers": {"a:1": good_record(score=5)}},
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_file_of_the_wrong_shape_is_a_typed_error_on_open(tmp_path: Path, case: str) -> None:
    store_file(tmp_path).write_text(json.dumps(BAD_FILES[case]))
    with pytest.raises(PeerStoreFormatError) as info:
        PeerStore(tmp_path, NET)
    assert isinstance(info.value, InputError)
    if case == "version 99":
        assert "version 99" in str(info.value)


def test_deep_nesting_and_non_json_are_typed_errors(tmp_path: Path) -> None:
    for text in ("[" * 100_000 + "]" * 100_000, "{not json", "\udcff"[:0] + "\x00\x01"):
        store_file(tmp_path).write_text(text)
        with pytest.raises(PeerStoreFormatError):
            PeerStore(tmp_path, NET)


def test_a_good_file_opens_with_its_records(tmp_path: Path) -> None:
    raw = {"version": 1, "peers": {"a:1": good_record(failures=2, ban_reason="x")}}
    store_file(tmp_path).write_text(json.dumps(raw))
    record = PeerStore(tmp_path, NET).get("a:1")
    assert record is not None and record.failures == 2 and record.ban_reason == "x"


def test_a_fifo_at_the_path_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(store_file(tmp_path))
    outcome: list[BaseException] = []

    def open_it() -> None:
        try:
            PeerStore(tmp_path, NET)
        except BaseException as exc:  # reported below
            outcome.append(exc)

    opener = threading.Thread(target=open_it, daemon=True)
    opener.start()
    opener.join(timeout=10)
    if opener.is_alive():  # unblock the thread before failing
        with open(store_file(tmp_path), "wb"):
            pass
        pytest.fail("opening a peer store on a FIFO blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], PeerStoreFormatError)
    assert "not a regular file" in str(outcome[0])


def test_a_file_where_the_folder_should_be_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("I am a file")
    with pytest.raises(PeerStoreFormatError, match="not a folder"):
        PeerStore(tmp_path / "data", NET)
    # further down: the folder cannot be made, and that is a typed error too
    with pytest.raises(PeerStoreFormatError):
        PeerStore(tmp_path / "data" / "below", NET)


def test_a_failure_is_not_erased_by_a_later_connect(tmp_path: Path) -> None:
    store = PeerStore(tmp_path, NET)
    store.record_failure("a:1")
    store.record_connected("a:1")
    record = store.get("a:1")
    assert record is not None and record.failures == 1 and record.last_connected is not None
    store.record_success("a:1")  # a connection that ended without fault
    record = store.get("a:1")
    assert record is not None and record.failures == 0


def test_a_full_disk_is_a_typed_error_and_the_old_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "disk"
    with full_disk(folder, monkeypatch):
        store = PeerStore(folder, NET)
        with pytest.raises(PeerStoreWriteError) as info:
            store.record_failure("a:1")
        assert isinstance(info.value, OSError) and isinstance(info.value.__cause__, OSError)
        assert not store_file(folder).exists()
        assert [p.name for p in folder.iterdir() if p.suffix == ".tmp"] == []
        # the change was kept: it goes out with the next write that works
        record = store.get("a:1")
        assert record is not None and record.failures == 1


WRITER = """
import sys
from peerpool.bitcoin.peer_store import PeerStore
folder, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = PeerStore(folder, "bsv-regtest")
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
for i in range(n):
    peer = f"10.{me}.{i // 256}.{i % 256}:8333"
    store.record_failure(peer)
    if i % 2 == 0:
        store.ban(peer, f"ban {me}-{i}")
"""


def test_two_processes_writing_lose_no_record_and_no_ban(tmp_path: Path) -> None:
    n = 120  # 180 writes per process, interleaved
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(me), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for me in (1, 2)
    ]
    for proc in procs:  # both have opened the (empty) store; then go at once
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    store = PeerStore(tmp_path, NET)
    assert len(store) == 2 * n
    for me in (1, 2):
        for i in range(n):
            peer = f"10.{me}.{i // 256}.{i % 256}:8333"
            record = store.get(peer)
            assert record is not None and record.failures == 1, peer
            assert store.is_banned(peer) == (i % 2 == 0), peer


def test_a_ban_by_another_process_is_seen_without_a_reload(tmp_path: Path) -> None:
    here = PeerStore(tmp_path, NET)
    assert not here.is_banned("a:1")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from peerpool.bitcoin.peer_store import PeerStore; "
            "PeerStore(sys.argv[1], 'bsv-regtest').ban('a:1', 'elsewhere')",
            str(tmp_path),
        ],
        check=True,
        timeout=60,
    )
    assert here.is_banned("a:1") and here.usable(["a:1", "b:2"]) == ["b:2"]
