"""`peerpool --help`, `--version` and `peerpool scan`'s errors, from the real
command in a subprocess: one line naming the file, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from peerpool import __version__
from peerpool.bitcoin import scan as scan_module
from peerpool.cli import build_parser
from tests.bitcoin import synthetic
from tests.cli.helpers import PEERPOOL, one_error_line, peerpool

DATA = synthetic.DATA_DIR
LINE = re.compile(r"^[0-9a-f]{64}\s+[\d,]+ B\s+[\d,]+ tx\s+\d+ chunk\(s\)\s+merkle (ok|MISMATCH)$")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_help_is_for_users_and_every_option_says_what_it_does() -> None:
    done = peerpool("--help")
    assert done.returncode == 0
    assert "Pools of peer-to-peer connections, from the shell." in done.stdout
    assert "lives beside the code" not in done.stdout  # the module's developer comment
    for name in ("scan", "sync", "directory", "node"):
        assert f"    {name} " in done.stdout
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            assert action.help, f"{parser.prog} {action.option_strings or action.dest}: no help"
    sync_help = peerpool("sync", "--help").stdout
    assert "connections per peer (default: 2)" in sync_help
    assert "bsv-regtest" in sync_help and "(default: 60.0)" in sync_help
    directory_help = peerpool("directory", "--help").stdout
    assert "(default: 127.0.0.1)" in directory_help and "(default: 5222)" in directory_help


def test_version() -> None:
    done = peerpool("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"peerpool {__version__}")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dat"
    assert one_error_line(peerpool("scan", missing), "scan") == (
        f"{missing}: No such file or directory"
    )


def test_a_directory_a_fifo_and_an_empty_file_are_said_so(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    empty = tmp_path / "empty.dat"
    empty.touch()
    expected = {
        tmp_path: "is a directory",
        fifo: "is a FIFO",
        empty: "is empty (no blocks)",
    }
    for path, text in expected.items():
        # the FIFO must not be opened: that would wait for a writer forever
        message = one_error_line(peerpool("scan", DATA / "blk_3A.dat", path, timeout=60), "scan")
        assert message.startswith(f"{path}: {text}"), message


def test_a_damaged_block_names_its_file_and_offset(tmp_path: Path) -> None:
    data = bytearray((DATA / "blk_0_to_4.dat").read_bytes())
    first_length = int.from_bytes(data[4:8], "little")
    second = 8 + first_length  # the second record: cut its block's transactions short
    data[second + 8 + 80] = 0xFD  # a CompactSize tx count that claims 0xFD.. transactions
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(bytes(data))
    message = one_error_line(peerpool("scan", "--no-progress", damaged), "scan")
    assert message.startswith(f"{damaged}: block at offset {second + 8}: "), message


def test_piped_output_has_only_block_lines_and_the_summary() -> None:
    # stdout and stderr into one pipe: no bar (stderr is no terminal), so no
    # carriage returns between the lines
    done = subprocess.run(
        [*PEERPOOL, "scan", DATA / "blk_0_to_4.dat", DATA / "testnet_block.raw"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert "\r" not in done.stdout
    assert all(LINE.match(line) for line in lines[:-1]) and len(lines) == 7
    assert lines[-1].startswith("scanned 6 blocks")


class _RecordingBar:
    instances: ClassVar[list[_RecordingBar]] = []

    def __init__(self, total: int, **kwargs: object) -> None:
        self.total, self.n, self.disable = total, 0, False
        _RecordingBar.instances.append(self)

    def __enter__(self) -> _RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int) -> None:
        assert n >= 0
        self.n += n

    def write(self, line: str) -> None:
        pass


@pytest.mark.parametrize(
    "names", [["testnet_block.raw"], ["blk_0_to_4.dat"], ["277647.dat", "testnet_block.raw"]]
)
def test_the_bar_ends_exactly_at_its_total(
    monkeypatch: pytest.MonkeyPatch, names: list[str]
) -> None:
    # a raw block has no 8-byte record header: counting one made the bar pass its total
    monkeypatch.setattr(scan_module, "tqdm", _RecordingBar)
    _RecordingBar.instances.clear()
    paths = [DATA / n for n in names]
    scan_module.scan_files(paths, 1 << 25)
    [bar] = _RecordingBar.instances
    assert bar.n == bar.total == sum(p.stat().st_size for p in paths)


def test_the_traceback_only_with_verbose(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dat"
    for args in (["-v", "scan", missing], ["scan", "-v", missing]):
        done = peerpool(*args)
        assert done.returncode == 2
        assert done.stderr.startswith("Traceback (most recent call last):")
        last = done.stderr.strip().splitlines()[-1]
        assert last == f"peerpool scan: {missing}: No such file or directory"
