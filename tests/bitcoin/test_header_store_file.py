"""The header store's file: damage anywhere but a torn tail, foreign files and
other networks' stores are typed errors that leave the file as it is; a torn
tail is cut; old-format files name their migration; duplicates count once."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from pathlib import Path

import pytest

from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.header_store import format as fmt
from peerpool.bitcoin.header_store.migrate import migrate_v1
from peerpool.bitcoin.headers import hash_header
from peerpool.bitcoin.networks import get_network
from peerpool.errors import (
    HeaderStoreCorruptError,
    HeaderStoreError,
    HeaderStoreFormatError,
    HeaderStoreMigrationError,
)
from tests.bitcoin.chain import mine_chain

REGTEST = get_network("btc-regtest")
CHAIN = mine_chain(REGTEST.genesis_header, 400)
PER_BATCH = 40  # 10 batches after genesis
GENESIS_BATCH_END = fmt.FILE_HEADER_LEN + fmt.BATCH_HEADER_LEN + fmt.RECORD_LEN


def written_store(path: Path) -> bytes:
    with HeadersStore(path, REGTEST) as store:
        for i in range(0, len(CHAIN), 80 * PER_BATCH):
            store.connect(CHAIN[i : i + 80 * PER_BATCH])
        assert store.height == 400
    return path.read_bytes()


def batch_offset(k: int) -> int:
    """File offset of the k-th batch after genesis (0-based)."""
    return GENESIS_BATCH_END + k * (fmt.BATCH_HEADER_LEN + PER_BATCH * fmt.RECORD_LEN)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_is_a_file_header_then_checksummed_batches(tmp_path: Path) -> None:
    data = written_store(tmp_path / "h")
    assert data[:8] == fmt.FILE_MAGIC and len(data) == batch_offset(10)
    count, data_crc, _ = struct.unpack_from("<III", data, batch_offset(3))
    start = batch_offset(3) + fmt.BATCH_HEADER_LEN
    assert count == PER_BATCH and data[start : start + 80] == CHAIN[120 * 80 : 121 * 80]
    hashes = start + PER_BATCH * 80
    assert data[hashes : hashes + 32] == hash_header(CHAIN[120 * 80 : 121 * 80])
    assert data_crc == fmt.crc(data[start : start + PER_BATCH * fmt.RECORD_LEN])


def test_every_flipped_bit_before_the_last_batch_is_an_error_and_the_file_stays(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h"
    original = written_store(path)
    rng = random.Random(13)
    last_batch = batch_offset(9)
    # 18 bits anywhere before the last batch: file header, genesis, batch
    # headers, records in the middle
    spots = [rng.randrange(0, last_batch * 8) for _ in range(14)]
    spots += [5 * 8, (fmt.FILE_HEADER_LEN + 20) * 8, batch_offset(4) * 8, batch_offset(5) * 8 + 1]
    for bit in spots:
        damaged = bytearray(original)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(damaged))
        with pytest.raises(HeaderStoreError):
            HeadersStore(path, REGTEST)
        assert path.read_bytes() == bytes(damaged), f"bit {bit}: the file was changed"


def test_a_flipped_bit_in_a_middle_record_names_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "h"
    data = bytearray(written_store(path))
    at = batch_offset(5) + fmt.BATCH_HEADER_LEN + 7 * 80 + 40
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(HeaderStoreCorruptError) as info:
        HeadersStore(path, REGTEST)
    assert info.value.offset == batch_offset(5) + fmt.BATCH_HEADER_LEN
    assert path.read_bytes() == bytes(data)


def test_a_corrupted_genesis_is_an_error_even_alone(tmp_path: Path) -> None:
    path = tmp_path / "h"
    HeadersStore(path, REGTEST).close()
    data = bytearray(path.read_bytes())
    assert len(data) == GENESIS_BATCH_END
    data[-10] ^= 0x01  # the genesis batch is also the last one: still not a torn tail
    path.write_bytes(bytes(data))
    with pytest.raises(HeaderStoreCorruptError):
        HeadersStore(path, REGTEST)
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is a text file\n" * 20,
        json.dumps({"version": 1, "peers": {}}).encode(),
        b"x",
        bytes(range(256)) * 3,
    ],
    ids=["text", "json", "one-byte", "binary"],
)
def test_a_foreign_file_is_refused_and_left_as_it_is(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "h"
    path.write_bytes(content)
    with pytest.raises(HeaderStoreFormatError, match="not a peerpool header store"):
        HeadersStore(path, REGTEST)
    assert path.read_bytes() == content


def test_another_networks_store_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "h"
    HeadersStore(path, "bsv-regtest").close()  # same genesis as btc-regtest, other magic
    before = digest(path)
    for other in ("btc-regtest", "btc-mainnet"):
        with pytest.raises(HeaderStoreFormatError, match="bsv-regtest"):
            HeadersStore(path, other)
    assert digest(path) == before


def test_a_future_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h"
    HeadersStore(path, REGTEST).close()
    data = bytearray(path.read_bytes())
    data[8:12] = struct.pack("<I", 3)
    body = bytes(data[: fmt.FILE_HEADER_LEN - 4])
    data[fmt.FILE_HEADER_LEN - 4 : fmt.FILE_HEADER_LEN] = struct.pack("<I", fmt.crc(body))
    path.write_bytes(bytes(data))
    with pytest.raises(HeaderStoreFormatError, match="version 3"):
        HeadersStore(path, REGTEST)


def test_a_torn_tail_is_cut_as_before(tmp_path: Path) -> None:
    path = tmp_path / "h"
    good = written_store(path)
    extra = mine_chain(CHAIN[-80:], 30, tag=5)
    batch = fmt.encode_batch(extra)
    for tail in (batch[:5], batch[:12], batch[: 12 + 30 * 80 - 1], bytes(700)):
        path.write_bytes(good + tail)
        with HeadersStore(path, REGTEST) as store:
            assert store.height == 400 and len(store) == 401
        assert path.read_bytes() == good
    # the last batch complete in length but not in content (a power loss)
    damaged = bytearray(batch)
    damaged[100] ^= 0xFF
    path.write_bytes(good + bytes(damaged))
    with HeadersStore(path, REGTEST) as store:
        assert store.height == 400
        store.connect(extra)  # and it takes the batch again
    with HeadersStore(path, REGTEST) as store:
        assert store.height == 430


def test_a_file_header_torn_at_creation_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "h"
    path.write_bytes(fmt.encode_file_header(REGTEST)[:30])
    with HeadersStore(path, REGTEST) as store:
        assert store.height == 0
    with HeadersStore(path, REGTEST) as store:
        assert store.height == 0 and len(store) == 1


def test_an_appended_duplicate_batch_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "h"
    data = written_store(path)
    dup = data[batch_offset(3) : batch_offset(4)]
    path.write_bytes(data + dup + data[batch_offset(9) :])
    with HeadersStore(path, REGTEST) as store:
        assert len(store) == 401 and store.height == 400
        assert store.tip.hash == hash_header(CHAIN[-80:])


def test_forks_reopen_with_the_same_best_chain(tmp_path: Path) -> None:
    path = tmp_path / "h"
    written_store(path)
    with HeadersStore(path, REGTEST) as store:
        for height in (10, 100, 250, 399):  # one-header side branches
            parent = CHAIN[(height - 1) * 80 : height * 80]
            store.connect(mine_chain(parent, 1, tag=height))
        longer = mine_chain(CHAIN[199 * 80 : 200 * 80], 250, tag=7)  # a branch that wins
        r = store.connect(longer)
        assert r.reorg is not None and store.height == 450
        tip, size, best = store.tip, len(store), list(store.best_chain_hashes())
    with HeadersStore(path, REGTEST) as store:
        assert (store.tip, len(store), list(store.best_chain_hashes())) == (tip, size, best)


def test_an_old_format_file_names_its_migration_then_migrates(tmp_path: Path) -> None:
    path = tmp_path / "h"
    branch = mine_chain(CHAIN[49 * 80 : 50 * 80], 3, tag=9)
    old = REGTEST.genesis_header + CHAIN[: 300 * 80] + branch + CHAIN[300 * 80 :]
    path.write_bytes(old)
    with pytest.raises(HeaderStoreMigrationError, match="migrate_v1"):
        HeadersStore(path, REGTEST)
    assert path.read_bytes() == old
    result = migrate_v1(path, REGTEST)
    assert (result.carried, result.left_behind) == (404, 0)
    assert result.old_copy.read_bytes() == old
    with HeadersStore(path, REGTEST) as store:
        assert len(store) == 404 and store.height == 400
        assert store.header(hash_header(branch[-80:])) == branch[-80:]


def test_migration_keeps_what_follows_damage_in_the_old_copy(tmp_path: Path) -> None:
    path = tmp_path / "h"
    old = bytearray(REGTEST.genesis_header + CHAIN)
    old[(200 + 1) * 80 + 76] ^= 0xFF  # record 201's nonce
    path.write_bytes(bytes(old))
    result = migrate_v1(path, REGTEST)
    assert result.carried <= 201 and result.left_behind >= 200
    assert result.old_copy.read_bytes() == bytes(old)
    with HeadersStore(path, REGTEST) as store:
        assert store.height == result.carried - 1


def test_a_failed_write_is_cut_off_and_the_store_reopens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h"
    with HeadersStore(path, REGTEST) as store:
        store.connect(CHAIN[: 80 * 100])
        size = path.stat().st_size
        real = store._file

        class FullDisk:  # the kernel wrote part of the batch, then the disk filled up
            closed = False

            def write(self, data: memoryview) -> int:
                real.write(bytes(data)[:1000])
                raise OSError(28, "No space left on device")

            def fileno(self) -> int:
                return real.fileno()

        monkeypatch.setattr(store, "_file", FullDisk())
        with pytest.raises(OSError, match="No space"):
            store.connect(CHAIN[80 * 100 : 80 * 200])
        assert path.stat().st_size == size and store.height == 100
        monkeypatch.undo()
        store.connect(CHAIN[80 * 100 : 80 * 200])
    with HeadersStore(path, REGTEST) as store:
        assert store.height == 200


def test_a_folder_or_fifo_at_the_path_is_refused(tmp_path: Path) -> None:
    import os

    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "f")
    for name in ("d", "f"):
        with pytest.raises(HeaderStoreFormatError, match="not a regular file"):
            HeadersStore(tmp_path / name, REGTEST)
