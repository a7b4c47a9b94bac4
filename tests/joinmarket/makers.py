"""Test makers: real DirectoryClientPools in the maker's seat, plus an onion-style
listener for direct connections (the maker side of a peer connection).

A maker answers ``!orderbook`` with its offers (and a ``!tbond``), ``!fill``
with ``!pubkey``, ``!tx`` with ``sigs`` ``!sig`` messages and ``!auth`` with
``!error`` when told to refuse. ``everywhere=True`` answers through every
directory it is on (the duplicate-answer case).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

from peerpool.joinmarket.client import DirectoryClient
from peerpool.joinmarket.messages import (
    ClientHandshake,
    private_line,
    split_routed,
    verify_private,
)
from peerpool.joinmarket.pool import DirectoryClientPool
from peerpool.joinmarket.protocol import NickAuthMode, PrivateMessage, PublicMessage
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import identity

BOND = base64.b64encode(bytes(range(252))).decode()


def offer_text(n_offers: int) -> tuple[str, str]:
    """(command, data) of a maker's orderbook answer with ``n_offers`` offers and a bond."""
    offers = [f"sw0reloffer {oid} 27300 {100_000_000 + oid} 0 0.00002" for oid in range(n_offers)]
    first, *rest = offers
    cmd, data = first.split(" ", 1)
    return cmd, data + "".join("!" + o for o in rest) + f"!tbond {BOND}"


class Maker:
    def __init__(
        self,
        n: int,
        directories: list[str],
        *,
        offers: int = 2,
        sigs: int = 1,
        refuse: bool = False,
        everywhere: bool = False,
        location: str = "NOT-SERVING-ONION",
    ) -> None:
        self.identity = identity(n)
        self.nick = self.identity.nick
        self.offers, self.sigs, self.refuse, self.everywhere = offers, sigs, refuse, everywhere
        self.pool = DirectoryClientPool(
            directories,
            "regtest",
            identity=self.identity,
            nick_auth=NickAuthMode.OFF,
            location=location,
            connect_timeout=10,
        )
        self.pool.listeners.append(self.on_message)
        self.received: list[PrivateMessage] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> Maker:
        outcome = await self.pool.connect_all_parallel(timeout=10)
        assert outcome.connected, outcome.errors
        return self

    def replies(self, message: PublicMessage | PrivateMessage) -> list[tuple[str, str]]:
        if isinstance(message, PublicMessage):
            return [offer_text(self.offers)] if message.body.startswith("orderbook") else []
        self.received.append(message)
        if message.command == "fill":
            return [("pubkey", "maker-session-key")]
        if message.command == "auth":
            return [("error", "refused")] if self.refuse else [("ioauth", "utxos")]
        if message.command == "tx":
            return [("sig", f"signature-{i}") for i in range(self.sigs)]
        return []

    def on_message(self, client: DirectoryClient, message: Any) -> None:
        answers = self.replies(message)
        if not answers:
            return
        targets = self.pool.connected_clients() if self.everywhere else [client]
        for target in targets:
            for cmd, data in answers:
                task = asyncio.get_running_loop().create_task(
                    target.send_private(message.from_nick, cmd, data)
                )
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        await self.pool.close_all()


class DirectListener:
    """The maker's own onion endpoint (on 127.0.0.1 here): answers a 793 with its
    793, then verifies private messages and answers them on the same connection."""

    def __init__(self, maker: Maker | None = None) -> None:
        self.maker = maker  # set before the first connection arrives
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def start(self) -> DirectListener:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        lines = LineBuffer()
        assert self.maker is not None
        me = self.maker.identity
        try:
            while data := await reader.read(65536):
                for raw in lines.feed(data):
                    msg_type, line = decode_frame(raw)
                    if msg_type == MessageType.HANDSHAKE:
                        hs = ClientHandshake(me.nick, "regtest", f"127.0.0.1:{self.port}")
                        writer.write(encode_frame(MessageType.HANDSHAKE, hs.to_line()))
                    elif msg_type == MessageType.PRIVMSG:
                        routed = split_routed(line)
                        signed = verify_private(routed)
                        message = PrivateMessage(
                            routed.from_nick, signed.command, signed.data, signed.pubkey_hex
                        )
                        for cmd, text in self.maker.replies(message):
                            reply = private_line(me, routed.from_nick, cmd, text)
                            writer.write(encode_frame(MessageType.PRIVMSG, reply))
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)
