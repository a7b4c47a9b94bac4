"""What a user writes with peerpool's public API, for `mypy --strict` (see
test_public_api_types.py). Checked, never run: each name must keep its real type
(no `Any` from a lazy import, no base class from an `__aenter__`): the
``assert_type`` checks compare with the classes of the defining modules, since
a public name that is ``Any`` would pass a check against itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import assert_type

import numpy as np
import numpy.typing as npt

import peerpool
from peerpool.bitcoin import (
    BitcoinClient,
    Block,
    BlockChunker,
    Chunk,
    ClientManager,
    Handlers,
    HeadersStore,
    MessageDecoder,
    Mode,
    PeerStore,
    block_txids,
    check_headers,
    encode_message,
    merkle_root,
    tx_offsets,
)
from peerpool.bitcoin.blockfile import iter_blocks
from peerpool.bitcoin.networks import get_network
from peerpool.chord import (
    PROTOCOL,
    ChordNode,
    NodeRef,
    distance,
    get_hashes,
    get_hashes_batch,
    ids_to_array,
)
from peerpool.chord import node as _chord_node
from peerpool.encoding import compact_size, sha256d
from peerpool.errors import (
    AddressError,
    ChordKeyError,
    MeshDialError,
    PeerpoolError,
    PoolRatioError,
    TruncatedBlockError,
)
from peerpool.index import COLUMNS, Columns, parse_block, parse_chunk
from peerpool.index.executors import LocalExecutor
from peerpool.index.indexer import Indexer, IndexReport
from peerpool.index.store import IndexStore, TxLocation
from peerpool.joinmarket import (
    DirectoryClient,
    DirectoryClientPool,
    DirectoryServer,
    MultiDirectoryClient,
    NickIdentity,
    Offer,
    ServerConfig,
)
from peerpool.joinmarket import client as _client
from peerpool.joinmarket import multi as _multi
from peerpool.joinmarket import pool as _pool
from peerpool.joinmarket import server as _server
from peerpool.joinmarket import server_state as _server_state
from peerpool.mesh import (
    DirectMessage,
    Identity,
    MeshEvent,
    MeshNode,
    PeerInfo,
    TopicMessage,
)
from peerpool.mesh import node as _mesh_node
from peerpool.mesh.pools import ConnectionPools
from peerpool.net import Address, Backoff, ProxyConfig, StreamIsolation, parse_address
from peerpool.pool import ClientPool, ConnectionInfo, NamedPools, pool_budgets
from peerpool.testing import BlockMaker, RegtestNode, ensure_bitcoind


class MyHandlers(Handlers):
    async def on_block(self, block: Block, client: BitcoinClient) -> None:
        size: int = block.size
        print(size, client.peer)

    async def on_block_chunk(self, chunk: Chunk, client: BitcoinClient) -> None:
        offsets: npt.NDArray[np.uint64] = chunk.tx_offsets
        print(len(offsets))


def kernels(path: Path) -> bytes:
    block = next(iter_blocks(path)).data
    offsets: npt.NDArray[np.uint64] = tx_offsets(block)
    _, txids = block_txids(block)
    root: bytes = merkle_root(txids)
    chunker = BlockChunker(len(block), chunk_size=40_000)
    chunks: list[Chunk] = chunker.feed(block)
    first: int = chunks[0].first_tx_index
    decoder = MessageDecoder(bytes.fromhex("dab5bffa"), max_payload=1 << 20)
    messages = decoder.feed(encode_message(bytes.fromhex("dab5bffa"), "ping", bytes(8)))
    result = check_headers(bytes(block[:80]))
    ok: bool = result.ok
    print(offsets.size, first, len(messages), ok)
    try:
        tx_offsets(bytes(block)[:-1])
    except TruncatedBlockError as e:
        where: int | None = e.offset
        print(where)
    return root


async def bitcoin(data: Path) -> int:
    with HeadersStore(data / "headers", "bsv-regtest") as store:
        manager = ClientManager(
            ["127.0.0.1:18444"],
            "bsv-regtest",
            MyHandlers(),
            mode=Mode.HIGH_LEVEL,
            peer_store=PeerStore(data, "bsv-regtest"),
        )
        async with manager as m:
            assert_type(m, ClientManager)
            peers: list[BitcoinClient] = await m.wait_for_n_peers(1, 10.0)
            print(len(peers))
        height: int = store.height
        return height


async def joinmarket() -> str:
    config = ServerConfig(network="regtest", max_peers=10)
    assert_type(config, _server_state.ServerConfig)
    async with DirectoryServer("127.0.0.1", 0, config=config) as server:
        assert_type(server, _server.DirectoryServer)
        client = DirectoryClient(server.address, "regtest", identity=NickIdentity())
        assert_type(client, _client.DirectoryClient)
        await client.connect()
        await client.send_private("J5xyz", "!fill", "0 100000 02ab")
        await client.close()
        pool = DirectoryClientPool([server.address], "regtest")
        assert_type(pool, _pool.DirectoryClientPool)
        await pool.close_all()
        async with MultiDirectoryClient([server.address], "regtest") as multi:
            # the subclass, not ClientPool: __aenter__ returns Self
            assert_type(multi, _multi.MultiDirectoryClient)
            channel: str = await multi.send_private("J5xyz", "!fill", "0 100000 02ab")
            offers: list[Offer] = await multi.fetch_orderbook(quiet=0.1)
            print(channel, len(offers))
        nick: str = server.nick
        return nick


def net_and_pool(conn: ConnectionInfo, pool: ClientPool[BitcoinClient]) -> str:
    address: Address = parse_address("127.0.0.1:8333")
    proxy = ProxyConfig(host="127.0.0.1", port=9050)
    isolation = StreamIsolation()
    backoff = Backoff(initial=0.5, multiplier=2.0, cap=30.0, jitter=0.2)
    print(proxy, isolation, backoff, pool.closed)
    try:
        parse_address("h:1:2")
    except AddressError as exc:
        print(exc)
    return address.node_id + conn.node_id


def chord() -> int:
    sha1_id, *_ = get_hashes("some key")
    d: int = distance(10, 3, limit=16)
    ids = ids_to_array([sha1_id])
    columns = get_hashes_batch(["a", "b"])
    print(ids.shape, columns)
    return sha1_id + d


async def chord_ring(mesh: MeshNode) -> str:
    async with ChordNode(mesh, replicas=3) as node:
        # the subclass, not the driver it is built on: __aenter__ returns Self
        assert_type(node, _chord_node.ChordNode)
        await node.join("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWxyz")
        await node.set("key", "value")
        value = await node.get("key")
        try:
            await node.pop("absent")
        except ChordKeyError as exc:
            print(exc)
        owner: NodeRef = node.find(node.id)
        keys = await node.keys()
        print(value, owner, len(keys))
        return PROTOCOL


async def mesh() -> bytes:
    async with MeshNode(Identity.generate(), request_protocols=(PROTOCOL,)) as a:
        assert_type(a, _mesh_node.MeshNode)
        try:
            info: PeerInfo = await a.dial("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWxyz")
        except MeshDialError:
            return b""
        await a.send(info.peer_id, "channel", b"hello")
        await a.subscribe("news")
        await a.publish("news", b"hi")
        answer: bytes = await a.request(info.peer_id, PROTOCOL, b"question")
        events: list[MeshEvent] = await a.next_events(timeout=1.0)
        for ev in events:
            if isinstance(ev, DirectMessage):
                return ev.payload
            if isinstance(ev, TopicMessage):
                return ev.data
        pools = ConnectionPools(10, {"in": ("net", 1.0)}, {"net": a}, policy=None)
        added, removed = await pools.update()
        print(len(added), len(removed), a.peer_id, a.listen_addrs, await chord_ring(a))
        return answer


def index(block: bytes, data: Path) -> int:
    cols: Columns = parse_block(block)
    txids: npt.NDArray[np.uint8] = cols["tx_txid"]
    again = parse_chunk(block, [0])
    n_tx, n_out, n_in = cols.counts
    print(COLUMNS[0], txids.shape, again.counts, n_out, n_in)
    with IndexStore(data / "index", "bsv-regtest") as store, LocalExecutor(workers=1) as workers:
        report: IndexReport = Indexer(store, workers).run(data, get_network("bsv-regtest"))
        where: TxLocation | None = store.tx(bytes(32))
        print(report.indexed, where)
    return n_tx


def pools_and_encoding() -> bytes:
    budgets: dict[str, int | None] = pool_budgets(8, {"in": 0.5, "out": 0.5, "spill": -1})
    try:
        pool_budgets(10, {"a": 0.5, "b": 0.4})
    except PoolRatioError as exc:
        print(exc)
    named: NamedPools[object, dict[str, int]] = NamedPools(8, {"in": ("net", 1.0)}, ["net"])
    print(budgets, named.size())
    return sha256d(compact_size(300))


def testing() -> str:
    with RegtestNode(binary=ensure_bitcoind()) as node:
        maker = BlockMaker(node)
        (coin,) = maker.mine_coins(1)
        block = maker.make_block(coin, 1_000)
        maker.submit(block)
        tip: str = node.best_block_hash()
        return tip + node.p2p_address + node.rpc_address


def main() -> None:
    try:
        print(peerpool.__version__, kernels(Path("blk.dat")), chord(), testing())
        asyncio.run(bitcoin(Path("data")))
        asyncio.run(joinmarket())
        print(asyncio.run(mesh()), index(b"", Path("data")), pools_and_encoding())
    except PeerpoolError as exc:
        print(exc)
