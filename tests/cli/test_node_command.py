"""`peerpool node`: install the regtest node into the user cache, start it on
127.0.0.1, read its addresses from stdout, use it, and stop it with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from peerpool.errors import RegtestError
from peerpool.testing import ensure_bitcoind
from peerpool.testing.regtest import RegtestNode
from tests.cli.helpers import PEERPOOL, one_error_line, peerpool


def test_install_prints_the_cached_binary() -> None:
    expected = ensure_bitcoind()
    done = peerpool("node", "install")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == expected and os.access(expected, os.X_OK)


def test_start_prints_the_ports_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    proc = subprocess.Popen(
        [*PEERPOOL, "node", "start", "--datadir", str(data), "--generate", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        fields: dict[str, str] = {}
        for line in proc.stdout:
            if line.strip() == "ready":
                break
            key, value = line.split(" ", 1)
            fields[key] = value.strip()
        host, p2p = fields["p2p"].rsplit(":", 1)
        rpc_host, rpc = fields["rpc"].rsplit(":", 1)
        assert host == rpc_host == "127.0.0.1" and p2p != rpc
        # a client of our own reaches it with the printed credentials
        client = RegtestNode(binary=ensure_bitcoind(), datadir=data)
        client.rpc_port = int(rpc)
        client._rpc_password = fields["rpcpassword"]
        assert client.block_count() == 3
        # `peerpool sync` against the printed P2P address
        synced = peerpool(
            "sync", "--network", "bsv-regtest", "--peer", fields["p2p"],
            "--data", tmp_path / "sync", "--no-progress",
        )  # fmt: skip
        assert synced.returncode == 0, synced.stderr
        assert synced.stdout.strip().splitlines()[-1].startswith("tip 3 ")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopping the node" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the node is gone: its RPC port no longer answers
    with pytest.raises(RegtestError, match="unreachable"):
        client.rpc("getblockcount", timeout=5)
    assert data.is_dir()  # a --datadir given by the user is kept


def test_start_rejects_a_bad_port() -> None:
    message = one_error_line(peerpool("node", "start", "--rpc-port", "70000"), "node")
    assert message == "--rpc-port 70000: out of range 0..65535"
