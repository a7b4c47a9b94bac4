"""The budget for non-block payloads is one total across a manager's
connections: two peers each sending a 3 MiB transaction against a 4 MiB
budget get one through and one refused at its header (a fake peer)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from peerpool.bitcoin import ClientManager, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.messages.framing import encode_message
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.errors import PayloadBudgetExceededError
from tests.integration.bitcoin.fake_peer import NETWORK, FakeSide, fake_peer
from tests.integration.bitcoin.recording import WAIT, RecordingHandlers

RAW_TX = bytes(range(256)) * (3 << 12)  # 3 MiB
TX = encode_message(NETWORK.magic, "tx", RAW_TX)


async def test_non_block_payloads_share_one_budget_across_connections(tmp_path: Path) -> None:
    go, release = asyncio.Event(), asyncio.Event()

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await go.wait()  # both connections are up
        await side.send_raw(TX[: len(TX) // 2])  # the header, and half the payload
        await release.wait()
        await side.send_raw(TX[len(TX) // 2 :])
        await side.silent()

    peers = PeerStore(tmp_path, "bsv-regtest")
    handlers = RecordingHandlers()
    config = ProtocolConfig(large_message_limit=1 << 20, max_message_size=4 << 20)
    async with fake_peer(script) as address:
        manager = ClientManager(
            [address],
            NETWORK,
            handlers,
            concurrency=2,
            config=config,
            peer_store=peers,
            payload_budget=4 << 20,
            ping_interval=0,
        )
        endings: dict[asyncio.Future[None], object] = {}
        try:
            await manager.connect_all_parallel(timeout=WAIT)
            clients = list(manager.clients.values())
            assert len(clients) == 2
            endings = {asyncio.ensure_future(c.wait_closed()): c for c in clients}
            go.set()
            done, _ = await asyncio.wait(endings, timeout=WAIT, return_when="FIRST_COMPLETED")
            assert len(done) == 1
            ended = done.pop()
            assert isinstance(ended.exception(), PayloadBudgetExceededError)
            assert manager.payload_budget is not None
            assert manager.payload_budget.used == len(RAW_TX)  # held by the other one
            release.set()
            await handlers.wait_for("tx")
            assert handlers.messages("tx") == [msgs.Tx(RAW_TX)]
            assert manager.payload_budget.used == 0  # given back once decoded
            (survivor,) = (c for f, c in endings.items() if f is not ended)
            assert getattr(survivor, "is_connected", False)
            record = peers.get(address)
            assert record is not None and record.failures == 1 and not peers.is_banned(address)
        finally:
            await manager.close_all()
            for ending in endings:
                ending.cancel()
