"""`peerpool scan` on the shared data and on damaged copies of it."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from peerpool.cli import main
from tests.bitcoin import synthetic
from tests.reference import bitcoin as ref

FILES = [synthetic.DATA_DIR / n for n in [*synthetic.BLOCK_FILES, "testnet_block.raw"]]
LINE = re.compile(
    r"^(?P<hash>[0-9a-f]{64})\s+(?P<size>[\d,]+) B\s+(?P<txs>[\d,]+) tx\s+"
    r"(?P<chunks>\d+) chunk\(s\)\s+merkle (?P<merkle>ok|MISMATCH)$"
)


def scan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str], str, str]:
    code = main(["scan", "--no-progress", *map(str, args)])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    summary = lines.pop() if lines and lines[-1].startswith("scanned") else ""
    return code, lines, summary, err


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def test_scan_of_the_shared_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, summary, _ = scan(capsys, *FILES)
    assert code == 0
    blocks = list(synthetic.real_blocks().values())
    matches = [LINE.match(line) for line in lines]
    assert all(matches) and len(matches) == len(blocks) == 265
    for m, block in zip(matches, blocks, strict=True):
        assert m is not None
        assert m["hash"] == ref.sha256d(block[:80])[::-1].hex()
        assert _int(m["size"]) == len(block)
        assert _int(m["txs"]) == len(ref.scan_block(block))
        assert (m["chunks"], m["merkle"]) == ("1", "ok")
    total_txs = sum(len(ref.scan_block(b)) for b in blocks)
    assert f"scanned 265 blocks, {total_txs:,} transactions" in summary
    assert "merkle roots: 265 ok, 0 mismatched" in summary


def test_chunk_counts_follow_the_chunk_size(capsys: pytest.CaptureFixture[str]) -> None:
    path = synthetic.DATA_DIR / "277647.dat"
    code, lines, _, _ = scan(capsys, "--chunk-size", "10000", path)
    size = len(synthetic.blk_records(path)[0])
    m = LINE.match(lines[0])
    assert code == 0 and m is not None
    assert (int(m["chunks"]), m["merkle"]) == (math.ceil(size / 10_000), "ok")


def _copy(tmp_path: Path, name: str, edit: int, value: int) -> Path:
    data = bytearray((synthetic.DATA_DIR / name).read_bytes())
    data[edit] = value
    path = tmp_path / f"damaged-{name}"
    path.write_bytes(bytes(data))
    return path


def test_a_changed_script_byte_is_a_merkle_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = synthetic.blk_records(synthetic.DATA_DIR / "277647.dat")[0]
    last = ref.scan_block(block)[-1]
    at = 8 + last.end - 10  # inside the last transaction's last output script
    damaged = _copy(tmp_path, "277647.dat", at, block[at - 8] ^ 0xFF)
    code, lines, summary, _ = scan(capsys, synthetic.DATA_DIR / "blk_3A.dat", damaged)
    assert code == 1
    assert [m["merkle"] for m in map(LINE.match, lines) if m] == ["ok", "MISMATCH"]
    assert "merkle roots: 1 ok, 1 mismatched" in summary


def test_a_wrong_transaction_count_is_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = synthetic.blk_records(synthetic.DATA_DIR / "277647.dat")[0]
    count = len(ref.scan_block(block))
    assert count < 0xFD and block[80] == count  # a one-byte CompactSize
    damaged = _copy(tmp_path, "277647.dat", 8 + 80, count + 1)
    code, _, _, err = scan(capsys, damaged)
    assert code == 2
    assert "TxCountMismatchError" in err and "213 of its 214 transactions" in err


def test_a_truncated_file_is_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.dat"
    path.write_bytes((synthetic.DATA_DIR / "blocks1-256").read_bytes()[:-10])
    code, lines, _, err = scan(capsys, path)
    assert code == 2
    assert len(lines) == 254  # every complete block before the damage is reported
    assert "BlockFormatError" in err and "runs past the end of the file" in err


def test_the_installed_entry_point(tmp_path: Path) -> None:
    """The real process: `python -m peerpool.cli`, its exit codes and streams."""
    ok = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", "scan", "--no-progress", str(FILES[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("merkle ok") == 5
    bad = tmp_path / "garbage.dat"
    bad.write_bytes(synthetic.MAINNET_MAGIC + (500).to_bytes(4, "little") + bytes(500))
    failed = subprocess.run(
        [sys.executable, "-m", "peerpool.cli", "scan", "--no-progress", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2
    assert "Error" in failed.stderr and "Traceback" not in failed.stderr
