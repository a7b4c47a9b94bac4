"""Block file reader: blkNNNNN.dat records and raw blocks, memory-mapped, with
typed errors for damaged files."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerpool.bitcoin.blockfile import iter_blocks
from peerpool.errors import BlockFormatError
from tests.bitcoin import synthetic

EXPECTED_COUNTS = {
    "blk_0_to_4.dat": 5,
    "blk_3A.dat": 1,
    "blk_4A.dat": 1,
    "blk_5A.dat": 1,
    "blocks1-256": 255,
    "277647.dat": 1,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_blk_files_yield_their_blocks(name: str) -> None:
    path = synthetic.DATA_DIR / name
    records = list(iter_blocks(path))
    assert len(records) == EXPECTED_COUNTS[name]
    assert [bytes(r.data) for r in records] == synthetic.blk_records(path)
    raw = path.read_bytes()
    for r in records:
        assert raw[r.offset : r.offset + len(r.data)] == r.data  # offset: where the block starts
        assert raw[r.offset - 8 : r.offset - 4] == synthetic.MAINNET_MAGIC
        assert r.path == path


def test_raw_block_is_one_record() -> None:
    path = synthetic.DATA_DIR / "testnet_block.raw"
    [record] = list(iter_blocks(path))
    assert (record.offset, bytes(record.data)) == (0, path.read_bytes())


def test_empty_file_and_core_preallocation(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    assert list(iter_blocks(empty)) == []
    # Core grows blk files in zeroed steps: the zeros after the last record end the file
    padded = tmp_path / "blk00000.dat"
    padded.write_bytes((synthetic.DATA_DIR / "blk_0_to_4.dat").read_bytes() + bytes(4096))
    assert len(list(iter_blocks(padded))) == 5


def _damaged(tmp_path: Path, edit: bytes) -> Path:
    path = tmp_path / "damaged.dat"
    path.write_bytes(edit)
    return path


def test_damaged_files_are_typed_errors_with_the_record_offset(tmp_path: Path) -> None:
    raw = (synthetic.DATA_DIR / "blk_0_to_4.dat").read_bytes()
    starts = [r.offset - 8 for r in iter_blocks(synthetic.DATA_DIR / "blk_0_to_4.dat")]
    second = starts[1]
    cases = {
        "truncated block": raw[:-1],
        "truncated record header": raw + raw[:5],
        "unknown magic": raw[:second] + b"\x11\x22\x33\x44" + raw[second + 4 :],
        "length past the end": raw[: second + 4]
        + (10**6).to_bytes(4, "little")
        + raw[second + 8 :],
    }
    expected_offsets = {
        "truncated block": starts[-1],
        "truncated record header": len(raw),
        "unknown magic": second,
        "length past the end": second,
    }
    for what, data in cases.items():
        with pytest.raises(BlockFormatError) as info:
            list(iter_blocks(_damaged(tmp_path, data)))
        assert isinstance(info.value, ValueError)
        assert info.value.offset == expected_offsets[what], what


def test_records_are_views_that_outlive_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "copy.dat"
    path.write_bytes((synthetic.DATA_DIR / "277647.dat").read_bytes())
    records = list(iter_blocks(path))
    assert isinstance(records[0].data, memoryview)
    assert bytes(records[0].data[:4]) == synthetic.blk_records(path)[0][:4]
