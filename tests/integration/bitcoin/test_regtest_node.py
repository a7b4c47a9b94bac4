"""The regtest node itself: lifecycle, RPC, blocks built by peerpool.testing, mempool helpers."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import peerpool.testing.regtest as regtest
from peerpool.errors import BlockRejectedError, PeerpoolError, RegtestError, RpcError
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker, merkle_root
from peerpool.testing.transactions import invalid_tx, malformed_tx, mempool_tx

pytestmark = pytest.mark.regtest


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists"; it is gone for our purposes once it no longer runs
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_rpc_answers_and_generate_mines(regtest_node: RegtestNode) -> None:
    before = regtest_node.block_count()
    hashes = regtest_node.generate(3)
    assert regtest_node.block_count() == before + 3
    assert hashes == [regtest_node.rpc("getblockhash", before + i) for i in (1, 2, 3)]
    assert regtest_node.best_block_hash() == hashes[-1]
    assert regtest_node.rpc("getblockchaininfo")["chain"] == "regtest"


def test_rpc_errors_are_typed(regtest_node: RegtestNode) -> None:
    with pytest.raises(RpcError) as caught:
        regtest_node.rpc("no-such-method")
    assert caught.value.code == -32601
    assert isinstance(caught.value, PeerpoolError)
    with pytest.raises(RpcError) as caught:
        regtest_node.rpc("getblockhash", 10**6)
    assert caught.value.code == -8
    assert caught.value.method == "getblockhash"


def test_node_listens_on_127_0_0_1_only(regtest_node: RegtestNode) -> None:
    with socket.create_connection(("127.0.0.1", regtest_node.p2p_port), timeout=10):
        pass
    # another loopback address reaches the same host, but not a socket bound to 127.0.0.1
    for port in (regtest_node.p2p_port, regtest_node.rpc_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", port), timeout=10).close()


def test_a_built_block_is_accepted_byte_for_byte(
    regtest_node: RegtestNode, block_maker: BlockMaker
) -> None:
    (coin,) = block_maker.mine_coins(1)
    block = block_maker.make_block(coin, 3_000_000, min_tx_size=150, max_tx_size=30_000, seed=7)
    assert block.size >= 3_000_000
    assert block_maker.submit(block) == block.hash_hex
    assert regtest_node.best_block_hash() == block.hash_hex

    assert bytes.fromhex(regtest_node.rpc("getblock", block.hash_hex, 0)) == bytes(block.raw)
    header = regtest_node.rpc("getblockheader", block.hash_hex)
    assert header["num_tx"] == len(block.txids) > 100
    assert header["merkleroot"] == merkle_root(block.txids)[::-1].hex()
    # the offsets cut the block into exactly its transactions
    ends = [*block.tx_offsets[1:].tolist(), block.size]
    for start, end, txid in zip(block.tx_offsets.tolist(), ends, block.txids, strict=True):
        assert sha256d(bytes(block.raw[start:end])) == txid

    # the chain's last output is spendable in the next block
    assert block.change is not None
    follow_up = block_maker.make_block(block.change, 200_000, seed=8)
    block_maker.submit(follow_up)
    assert regtest_node.best_block_hash() == follow_up.hash_hex


def test_a_block_with_a_wrong_merkle_root_is_rejected(
    regtest_node: RegtestNode, block_maker: BlockMaker
) -> None:
    (coin,) = block_maker.mine_coins(1)
    block = block_maker.make_block(coin, 50_000)
    block.raw[-10] ^= 0xFF  # inside the last transaction's padding; the header is unchanged
    tip = regtest_node.best_block_hash()
    with pytest.raises(BlockRejectedError) as caught:
        block_maker.submit(block)
    assert "mrkl" in caught.value.reason
    assert caught.value.block_hash == block.hash_hex
    assert regtest_node.best_block_hash() == tip


def test_mempool_transaction_helpers(regtest_node: RegtestNode, block_maker: BlockMaker) -> None:
    good, spare = block_maker.mine_coins(2)
    raw = mempool_tx(good)
    txid = regtest_node.rpc("sendrawtransaction", raw.hex())
    assert txid == sha256d(raw)[::-1].hex()
    assert txid in regtest_node.rpc("getrawmempool")

    with pytest.raises(RpcError) as caught:
        regtest_node.rpc("sendrawtransaction", invalid_tx(spare).hex())
    assert caught.value.code == -26 and "bad-txns-in-belowout" in caught.value.rpc_message
    with pytest.raises(RpcError) as caught:
        regtest_node.rpc("sendrawtransaction", malformed_tx().hex())
    assert caught.value.code == -22


def test_restart_keeps_chain_and_ports_and_close_cleans_up() -> None:
    node = RegtestNode()
    with node:
        node.generate(4)
        ports, tip, pid = (node.p2p_port, node.rpc_port), node.best_block_hash(), node.pid
        node.restart()
        assert (node.p2p_port, node.rpc_port) == ports
        assert node.best_block_hash() == tip
        assert node.pid != pid and node.is_running
        assert pid is not None and not process_exists(pid)
        last_pid = node.pid
    assert not node.is_running
    assert last_pid is not None and not process_exists(last_pid)
    assert not node.datadir.exists()


def test_killed_node_is_a_stopped_node() -> None:
    with RegtestNode() as node:
        node.kill()
        assert not node.is_running
        with pytest.raises(RegtestError):
            node.rpc("getblockcount", timeout=5)
        node.start()  # a crash loses nothing the node had flushed
        assert node.block_count() == 0


def test_node_does_not_outlive_a_killed_test_process(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from peerpool.testing import RegtestNode\n"
        f"node = RegtestNode(datadir=__import__('pathlib').Path({str(tmp_path / 'node')!r}))\n"
        "node.start()\n"
        "print(node.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        node_pid = int(owner.stdout.readline())
        assert process_exists(node_pid)
        owner.send_signal(signal.SIGKILL)  # no atexit, no finalizer: only the kernel can help
        owner.wait(timeout=30)
        wait_until(
            lambda: not process_exists(node_pid), 60, "bitcoind to exit after its owner died"
        )
    finally:
        owner.kill()
        owner.wait(timeout=30)


def test_a_binary_that_cannot_run_is_a_typed_error(tmp_path: Path) -> None:
    node = RegtestNode(binary=tmp_path / "no-bitcoind", datadir=tmp_path / "data")
    with pytest.raises(RegtestError, match="cannot run"):
        node.start()
    node.close()


def test_a_port_taken_before_the_node_binds_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = regtest.free_port
        ports = iter([taken])
        monkeypatch.setattr(regtest, "free_port", lambda: next(ports, None) or real_free_port())
        with RegtestNode() as node:
            assert node.p2p_port != taken
            assert node.block_count() == 0
