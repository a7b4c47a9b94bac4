"""Issue 16 against real nodes: persisted peers dialled after a restart (a
banned one skipped), a second node learned from ``addr``/``addrv2`` and
connected to (banned and over-the-group-limit addresses not dialled), forks
of the header store built with ``invalidateblock``, ``follow_tips`` and a
transaction watcher on one client, and ``async with ... wait_for``."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerpool.bitcoin import ClientManager, HeadersStore, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.announcements import Announcement
from peerpool.bitcoin.sync import follow_tips, sync_headers
from peerpool.errors import PeerTimeoutError
from peerpool.net import Address
from peerpool.testing import RegtestNode, ensure_bitcoind, free_port
from peerpool.testing.blocks import BlockMaker
from peerpool.testing.transactions import mempool_tx
from tests.integration.bitcoin.recording import WAIT

pytestmark = pytest.mark.regtest

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def second_node() -> Iterator[RegtestNode]:
    with RegtestNode(binary=ensure_bitcoind()) as node:
        yield node


def our_connections(node: RegtestNode) -> int:
    """Inbound connections the node has (every test peer dials in)."""
    return sum(1 for p in node.rpc("getpeerinfo") if p.get("inbound"))


async def wait_until(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {WAIT:g} s: {what}")
        await asyncio.sleep(0.1)


# --- persisted peers ------------------------------------------------------------


async def test_persisted_peers_are_dialled_after_a_restart_and_banned_ones_skipped(
    regtest_node: RegtestNode, second_node: RegtestNode, tmp_path: Path
) -> None:
    store = PeerStore(tmp_path, "bsv-regtest")
    first = ClientManager(
        [regtest_node.p2p_address, second_node.p2p_address],
        "bsv-regtest",
        peer_store=store,
        ping_interval=0,
        wait_for=2,
        wait_timeout=WAIT,
    )
    async with first:
        assert {c.peer for c in first.available()} == {
            regtest_node.p2p_address,
            second_node.p2p_address,
        }
    assert set(store.peers()) == {regtest_node.p2p_address, second_node.p2p_address}
    store.ban(second_node.p2p_address, "test: misbehaved")
    before = await asyncio.to_thread(our_connections, second_node)

    # a new process would open the same folder: a new store, no peers configured
    restarted = ClientManager(
        [],
        "bsv-regtest",
        peer_store=PeerStore(tmp_path, "bsv-regtest"),
        use_persisted_peers=True,
        ping_interval=0,
        wait_for=1,
        wait_timeout=WAIT,
    )
    assert list(restarted.addresses) == [regtest_node.p2p_address]  # the banned one is not there
    async with restarted:
        [client] = restarted.available()
        assert client.peer == regtest_node.p2p_address
        await asyncio.sleep(1.0)  # a dial of the banned node, were there one, would be under way
        assert await asyncio.to_thread(our_connections, second_node) <= before
        assert list(restarted.clients) == [regtest_node.p2p_address]


async def test_persisted_peers_beside_configured_ones_are_not_dialled_twice(
    regtest_node: RegtestNode, tmp_path: Path
) -> None:
    store = PeerStore(tmp_path, "bsv-regtest")
    store.record_connected(regtest_node.p2p_address)
    manager = ClientManager(
        [regtest_node.p2p_address],
        "bsv-regtest",
        peer_store=store,
        use_persisted_peers=True,
        concurrency=2,
        ping_interval=0,
    )
    assert list(manager.addresses) == [regtest_node.p2p_address, f"{regtest_node.p2p_address}#1"]
    await manager.close_all()


# --- discovery --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def announcer(peers: list[str], v2: bool) -> AsyncIterator[str]:
    """Our scripted peer in its own process, announcing ``peers``."""
    command = [sys.executable, "-m", "tests.integration.bitcoin.addr_announcer"]
    process = subprocess.Popen(
        [*command, *(["--addrv2"] if v2 else []), *peers],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WAIT)
        assert line.startswith("127.0.0.1:"), f"the announcer said {line!r}"
        yield line.strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


class CountingListener:
    """A TCP port that counts who connects (and closes at once)."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(count, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class RecordingManager(ClientManager):
    """Records every learned address the finder hands over to be dialled (a
    banned peer would also be refused at the dial: this shows it is never tried)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dialled: list[str] = []

    def add_learned_address(self, address: Address) -> str:
        self.dialled.append(address.node_id)
        return super().add_learned_address(address)


@pytest.mark.parametrize("v2", [False, True], ids=["addr", "addrv2"])
async def test_a_node_announced_by_addr_is_connected_to(
    second_node: RegtestNode, tmp_path: Path, v2: bool
) -> None:
    banned, over_limit = CountingListener(), CountingListener()
    banned_address, over_limit_address = await banned.start(), await over_limit.start()
    store = PeerStore(tmp_path, "bsv-regtest")
    store.ban(banned_address, "test: banned")
    # the banned one first: were it not skipped it would take the group's last
    # place, and the second node would not be dialled
    announced = [banned_address, second_node.p2p_address, over_limit_address]
    try:
        async with announcer(announced, v2) as scripted:
            manager = RecordingManager(
                [scripted],
                "bsv-regtest",
                peer_store=store,
                discover_peers=True,
                target_peers=4,  # more than there are: it keeps looking
                peers_per_group=2,  # every address here is in 127.0/16
                ping_interval=0,
            )
            async with manager:
                await wait_until(
                    lambda: second_node.p2p_address in {c.peer for c in manager.available()},
                    "the announced node connected",
                )
                assert manager.finder is not None
                assert second_node.p2p_address in manager.finder.learned
                await asyncio.sleep(1.0)  # time for any wrong dial to show
                peers = {c.peer for c in manager.available()}
                assert peers == {scripted, second_node.p2p_address}
            assert manager.dialled == [second_node.p2p_address]  # dialled once, and only it
            assert banned.connections == 0  # banned: never dialled
            assert over_limit.connections == 0  # its group had its two peers
            # learned peers are kept in the store, for use_persisted_peers
            assert {second_node.p2p_address, over_limit_address} <= set(store.peers())
            assert store.is_banned(banned_address)
    finally:
        await banned.stop()
        await over_limit.stop()


async def test_discovery_is_off_unless_asked_for(second_node: RegtestNode) -> None:
    async with announcer([second_node.p2p_address], False) as scripted:
        manager = ClientManager([scripted], "bsv-regtest", ping_interval=0, wait_for=1)
        async with manager:
            await asyncio.sleep(1.0)
            assert manager.finder is None and list(manager.addresses) == [scripted]


# --- forks --------------------------------------------------------------------------


def chainwork(node: RegtestNode, block_hash: bytes) -> int:
    return int(node.rpc("getblockheader", block_hash[::-1].hex())["chainwork"], 16)


async def test_fork_queries_on_a_fork_built_with_invalidateblock(
    regtest_node: RegtestNode, tmp_path: Path
) -> None:
    node = regtest_node
    manager = ClientManager([node.p2p_address], "bsv-regtest", ping_interval=0, wait_for=1)
    async with manager:
        client = manager.available()[0]
        with HeadersStore(tmp_path / "headers", "bsv-regtest") as store:
            await asyncio.to_thread(node.generate, 3)
            await asyncio.wait_for(sync_headers(client, store), WAIT)
            height = store.height
            old_tip = store.tip.hash
            fork_base = store.hash_at(height - 2)  # the last block both branches share
            assert fork_base is not None
            doomed = store.hash_at(height - 1)
            assert doomed is not None
            await asyncio.to_thread(node.rpc, "invalidateblock", doomed[::-1].hex())
            await asyncio.to_thread(node.generate, 3)
            await asyncio.wait_for(sync_headers(client, store), WAIT)
            new_tip = store.tip.hash
            assert new_tip.hex() != old_tip.hex() and store.height == height + 1

            chains = store.chains()
            best, *others = chains
            assert best.is_best and best.tip.hash == new_tip and best.length == 0
            old = next(b for b in others if b.tip.hash == old_tip)
            assert old.fork_point.hash == fork_base and old.length == 2
            assert old.tip.height == height
            assert store.common_ancestor(old_tip, new_tip).hash == fork_base
            # chainwork per branch and height, as the node reports it
            for branch in (old_tip, new_tip):
                for h in (height - 2, height - 1, height):
                    ancestor = store.ancestor(branch, h)
                    assert ancestor is not None
                    expected = await asyncio.to_thread(chainwork, node, ancestor.hash)
                    assert store.chainwork_at(h, branch) == expected == ancestor.chainwork
            assert store.chainwork_at(height + 1, old_tip) is None
            assert store.chainwork_at(height + 1) == await asyncio.to_thread(
                chainwork, node, new_tip
            )


# --- announcements --------------------------------------------------------------------


async def test_follow_tips_and_a_tx_watcher_on_one_client(
    block_maker: BlockMaker, tmp_path: Path
) -> None:
    node = block_maker.node
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    manager = ClientManager([node.p2p_address], "bsv-regtest", ping_interval=0, wait_for=1)
    async with manager:
        client = manager.available()[0]
        announced = manager.tx_announcements  # from here on, with the peer
        blocks = manager.block_announcements
        with HeadersStore(tmp_path / "headers", "bsv-regtest") as store:
            tips = follow_tips(client, store, poll_interval=WAIT)
            try:
                await asyncio.wait_for(tips.__anext__(), WAIT)  # the initial sync
                assert store.tip.hash_hex == await asyncio.to_thread(node.best_block_hash)

                async def watch_mempool(txid: bytes) -> msgs.InvVector:
                    while (item := await client.tx_queue.get()).hash != txid:
                        pass
                    return item

                async def next_tip() -> str:
                    return (await tips.__anext__()).tip.hash_hex

                raw = mempool_tx(coin)
                txid_hex = await asyncio.to_thread(node.rpc, "sendrawtransaction", raw.hex())
                txid = bytes.fromhex(txid_hex)[::-1]
                follower = asyncio.create_task(next_tip())  # waits on the block queue meanwhile
                item = await asyncio.wait_for(watch_mempool(txid), WAIT)
                assert item.kind == msgs.InvType.TX and not follower.done()

                async def from_manager() -> Announcement:
                    while (a := await announced.get()).hash != txid:
                        pass
                    return a

                announcement = await asyncio.wait_for(from_manager(), WAIT)
                assert announcement.peer == node.p2p_address
                assert announcement.client_id == client.id and announcement.hash_hex == txid_hex

                [mined] = await asyncio.to_thread(node.generate, 1)
                assert await asyncio.wait_for(follower, WAIT) == mined
                assert store.tip.hash_hex == mined
                # the manager's block queue saw it too (a BIP130 headers
                # announcement: we asked for sendheaders), with the peer
                block = await asyncio.wait_for(blocks.get(), WAIT)
                while block.hash_hex != mined:
                    block = await asyncio.wait_for(blocks.get(), WAIT)
                assert block.item.kind == msgs.InvType.BLOCK and block.peer == node.p2p_address
            finally:
                await tips.aclose()


# --- wait_for ----------------------------------------------------------------------------


async def test_async_with_waits_for_its_first_peers(regtest_node: RegtestNode) -> None:
    manager = ClientManager(
        [regtest_node.p2p_address],
        "bsv-regtest",
        concurrency=3,
        ping_interval=0,
        wait_for=3,
        wait_timeout=WAIT,
    )
    async with manager:
        assert len(manager.available()) == 3  # no wait_for_n_peers needed


async def test_wait_for_times_out_with_a_typed_error() -> None:
    dead = f"127.0.0.1:{free_port()}"
    manager = ClientManager([dead], "bsv-regtest", ping_interval=0, wait_for=1, wait_timeout=0.5)
    with pytest.raises(PeerTimeoutError, match="0 of the 1 connections"):
        async with manager:
            raise AssertionError("entered without a peer")
    assert manager.closed  # nothing left running in the background
