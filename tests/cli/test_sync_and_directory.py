"""`peerpool sync` and `peerpool directory` with bad input and hostile
surroundings, from the real command in a subprocess."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import PEERPOOL, one_error_line, peerpool


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once it is closed


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield int(squatter.getsockname()[1])


def _sync(data: Path, port: int, *extra: str) -> list[str]:
    return [
        "sync", "--network", "bsv-regtest", "--peer", f"127.0.0.1:{port}",
        "--data", str(data), "--no-progress", *extra,
    ]  # fmt: skip


def test_sync_to_a_closed_port_says_what_it_tried_and_why(tmp_path: Path, closed_port: int) -> None:
    done = peerpool(*_sync(tmp_path, closed_port, "--connect-timeout", "2"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    peer = f"127.0.0.1:{closed_port}"
    assert lines[0].startswith(f"peerpool sync: connecting to {peer} ")
    assert any("connection refused" in line for line in lines[1:-1])  # said as it happens
    assert lines[-1].startswith(f"peerpool sync: no peer connected within 2 s: {peer}: ")
    assert "connection refused" in lines[-1]


@pytest.mark.parametrize(
    ("where", "expected"),
    [("file", "not a directory"), ("/proc", "/proc/.lock")],
)
def test_sync_data_that_cannot_be_a_folder(tmp_path: Path, where: str, expected: str) -> None:
    data = Path(where) if where.startswith("/") else tmp_path / "a-file"
    if where == "file":
        data.write_text("not a folder")
    message = one_error_line(peerpool(*_sync(data, 1)), "sync")
    assert message.startswith(f"--data {data}: cannot be used (") and expected in message


def test_two_syncs_on_one_folder_the_second_names_the_first(
    tmp_path: Path, closed_port: int
) -> None:
    first = subprocess.Popen(
        [*PEERPOOL, *_sync(tmp_path, closed_port, "--connect-timeout", "60")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        first.stderr.readline()  # "connecting to ...": it holds the lock by now
        second = peerpool(*_sync(tmp_path, closed_port, "--connect-timeout", "1"))
        message = one_error_line(second, "sync")
        assert message == (
            f"FolderLockedError: {tmp_path} is in use by peerpool sync (pid {first.pid})"
        )
    finally:
        first.terminate()
        first.wait(timeout=30)
    # the lock went with its holder: a third run gets past it (to the dial)
    third = peerpool(*_sync(tmp_path, closed_port, "--connect-timeout", "1"))
    assert "no peer connected within 1 s" in third.stderr


def test_sync_rejects_bad_options(tmp_path: Path) -> None:
    bad = {
        ("--peer", "h:1:2"): "AddressError: 'h:1:2': too many ':'",
        ("--concurrency", "0"): "--concurrency must be at least 1, not 0",
        ("--connect-timeout", "-1"): "--connect-timeout must be positive, not -1.0",
    }
    for (option, value), expected in bad.items():
        args = _sync(tmp_path, 1)
        if option == "--peer":
            args[args.index("--peer") + 1] = value
        else:
            args += [option, value]
        assert one_error_line(peerpool(*args), "sync").startswith(expected)
    unknown = peerpool("sync", "--network", "foonet", "--peer", "x:1", "--data", str(tmp_path))
    assert unknown.returncode == 2 and "invalid choice: 'foonet'" in unknown.stderr


def _directory(*args: str) -> list[str]:
    return ["directory", "--network", "regtest", *args]


def test_directory_rejects_bad_options(taken_port: int) -> None:
    bad = {
        ("--max-peers", "0"): "--max-peers 0: must be at least 1",
        ("--rate", "-5"): "--rate -5.0: must be a positive number",
        ("--rate", "nan"): "--rate nan: must be a positive number",
        ("--port", "70000"): "--port 70000: out of range 0..65535",
        ("--host", "h:1:2"): "--host 'h:1:2': not an IP address or host name",
        ("--directory-id", "NOT VALID"): "InputError: invalid directory-id 'NOT VALID'",
        ("--directory-id", "abc.onion"): "--directory-id 'abc.onion': invalid directory-id",
        ("--port", str(taken_port)): f"cannot listen on 127.0.0.1:{taken_port}: ",
        ("--host", "no-such-host.invalid"): "cannot listen on no-such-host.invalid:",
    }
    for (option, value), expected in bad.items():
        message = one_error_line(peerpool(*_directory(option, value), timeout=60), "directory")
        assert message.startswith(expected), message
    assert "address already in use" in one_error_line(
        peerpool(*_directory("--port", str(taken_port))), "directory"
    )
    unknown = peerpool("directory", "--network", "foonet")
    assert unknown.returncode == 2 and "invalid choice: 'foonet'" in unknown.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_directory_stops_gracefully_on_sigint_and_sigterm(signum: int) -> None:
    proc = subprocess.Popen(
        [*PEERPOOL, *_directory("--port", "0")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = proc.stdout.readline()
        port = int(banner.split(" on ")[1].split(" ")[0].rsplit(":", 1)[1])
        peer = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(0.2)  # accepted
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read().strip() == "directory stopped"
        peer.settimeout(10)
        assert peer.recv(1 << 16) == b""  # the server closed the connection on its way out
        peer.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
