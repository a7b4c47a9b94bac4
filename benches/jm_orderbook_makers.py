"""Directories and makers for the orderbook benchmark, in a process of their own.

    python benches/jm_orderbook_makers.py --directories 3 --makers 100 --offers 10

Starts ``--directories`` DirectoryServers and ``--makers`` makers, each on every
directory, prints the directories' addresses as one JSON line, then serves
until stdin closes. A maker answers ``!orderbook`` through every directory it
is on (so the taker sees each offer once per directory) with one signed
private message holding all its offers; the signature covers the offers only,
not the recipient, so it is computed once per maker up front.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from peerpool.joinmarket.identity import ONION_HOSTID, NickIdentity
from peerpool.joinmarket.messages import ClientHandshake
from peerpool.joinmarket.server import DirectoryServer
from peerpool.joinmarket.server_core import ServerConfig
from peerpool.joinmarket.wire import MessageType, encode_frame


class MakerConnection(asyncio.Protocol):
    def __init__(self, maker: NickIdentity, reply: str) -> None:
        self.maker = maker
        self.reply = reply  # "cmd data pubkey sig", the part after "from!to!"
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        hs = ClientHandshake(self.maker.nick, "regtest")
        transport.write(encode_frame(MessageType.HANDSHAKE, hs.to_line()))

    def data_received(self, data: bytes) -> None:
        *lines, self.pending = (self.pending + data).split(b"\n")
        for raw in lines:
            msg = json.loads(raw)
            if msg["type"] == MessageType.PUBMSG and msg["line"].endswith("!PUBLIC!orderbook"):
                taker = msg["line"].split("!", 1)[0]
                line = f"{self.maker.nick}!{taker}!{self.reply}"
                assert self.transport is not None
                self.transport.write(encode_frame(MessageType.PRIVMSG, line))


def maker_reply(maker: NickIdentity, n_offers: int, base_oid: int) -> str:
    offers = [
        f"sw0reloffer {base_oid + i} 27300 {100_000_000 + i} 0 0.0000{i % 9 + 1}"
        for i in range(n_offers)
    ]
    cmd, data = offers[0].split(" ", 1)
    data += "".join("!" + o for o in offers[1:])
    return f"{cmd} {data} {maker.pubkey_hex} {maker.sign(data + ONION_HOSTID)}"


async def main(args: argparse.Namespace) -> None:
    config = ServerConfig(network="regtest", rate=1e9, burst=1e9)
    servers = [DirectoryServer("127.0.0.1", 0, config=config) for _ in range(args.directories)]
    for server in servers:
        await server.start()
    loop = asyncio.get_running_loop()
    for m in range(args.makers):
        maker = NickIdentity()
        reply = maker_reply(maker, args.offers, 0)
        for server in servers:
            await loop.create_connection(
                lambda maker=maker, reply=reply: MakerConnection(maker, reply),
                "127.0.0.1",
                server.port,
            )
        if m % 20 == 19:
            await asyncio.sleep(0.01)  # let the handshakes through
    await asyncio.sleep(0.5)
    print(json.dumps([s.address for s in servers]), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes stdin
    for server in servers:
        await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--directories", type=int, default=3)
    parser.add_argument("--makers", type=int, default=100)
    parser.add_argument("--offers", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
