"""Attack and victim peers for the directory load tests, run as a separate process.

    python benches/jm_attack.py --port P --mode victim|storm|stall [--peers N]

Every mode connects and handshakes first, prints ``ready`` and then obeys
lines on stdin:

* ``victim``: two honest clients (our DirectoryClient) exchanging signed
  private messages every ``--interval`` s after ``go``; on ``stop`` it prints
  ``{"count", "p50", "p99", "max", "outstanding"}`` of the round trips in
  seconds, counting a message still unanswered at ``stop`` with its age.
* ``storm``: ``--peers`` handshaken peers; ``go`` aborts them all at once
  (SO_LINGER 0, so the server sees resets) and prints ``{"aborted": n}``.
* ``stall``: ``--peers`` peers that stop reading after the handshake plus one
  feeder; ``go`` makes the feeder send ``--messages`` public messages of
  ``--size`` bytes at ``--rate`` per second (under the server's rate limit),
  then prints ``{"sent": n, "cut": k}`` (k: non-readers the server closed).

Being another process is the point: a stalled server cannot also stall the
clock of the peers that measure it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
import time

from peerpool.joinmarket.client import DirectoryClient
from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.messages import ClientHandshake, public_line
from peerpool.joinmarket.protocol import NickAuthMode, PrivateMessage
from peerpool.joinmarket.wire import MessageType, encode_frame


class RawPeer(asyncio.Protocol):
    """A handshaken peer that counts bytes and can stop reading."""

    def __init__(self, hello: bytes) -> None:
        self.hello = hello
        self.accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.hello)

    def data_received(self, data: bytes) -> None:
        if not self.accepted.done() and b"\n" in data:
            self.accepted.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.accepted.done():
            self.accepted.set_exception(ConnectionError("closed before the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)


async def raw_peers(port: int, count: int) -> list[RawPeer]:
    loop = asyncio.get_running_loop()

    async def one() -> RawPeer:
        ident = NickIdentity()
        hello = encode_frame(
            MessageType.HANDSHAKE, ClientHandshake(ident.nick, "regtest").to_line()
        )
        _, peer = await loop.create_connection(lambda: RawPeer(hello), "127.0.0.1", port)
        await asyncio.wait_for(peer.accepted, 60)
        return peer

    peers: list[RawPeer] = []
    for start in range(0, count, 200):  # in waves: the listen backlog is finite
        peers += await asyncio.gather(*(one() for _ in range(min(200, count - start))))
    return peers


async def read_command() -> str:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip()


def emit(obj: object) -> None:
    print(json.dumps(obj), flush=True)


async def victim(args: argparse.Namespace) -> None:
    address = f"127.0.0.1:{args.port}"
    a = DirectoryClient(address, "regtest", nick_auth=NickAuthMode.OFF)
    b = DirectoryClient(address, "regtest", nick_auth=NickAuthMode.OFF)
    await a.connect()
    await b.connect()
    sent: dict[str, float] = {}
    rtts: list[float] = []
    echoes: set[asyncio.Future[None]] = set()

    def echo(client: DirectoryClient, message: object) -> None:
        if isinstance(message, PrivateMessage) and message.command == "ping":
            task = asyncio.ensure_future(b.send_private(a.nick, "pong", message.data))
            echoes.add(task)
            task.add_done_callback(echoes.discard)

    def answered(client: DirectoryClient, message: object) -> None:
        if isinstance(message, PrivateMessage) and message.command == "pong":
            start = sent.pop(message.data, None)
            if start is not None:
                rtts.append(time.monotonic() - start)

    b.listeners.append(echo)
    a.listeners.append(answered)
    print("ready", flush=True)
    await read_command()  # go

    async def ping_forever() -> None:
        seq = 0
        while True:
            seq += 1
            sent[str(seq)] = time.monotonic()
            with contextlib.suppress(Exception):
                await a.send_private(b.nick, "ping", str(seq))
            await asyncio.sleep(args.interval)

    pinger = asyncio.ensure_future(ping_forever())
    await read_command()  # stop
    pinger.cancel()
    now = time.monotonic()
    ages = [now - t for t in sent.values()]
    everything = sorted(rtts + ages)
    n = len(everything)
    emit(
        {
            "count": len(rtts),
            "outstanding": len(ages),
            "p50": everything[n // 2] if n else 0.0,
            "p99": everything[min(n - 1, int(n * 0.99))] if n else 0.0,
            "max": everything[-1] if n else 0.0,
            "connected": a.connected and b.connected,
        }
    )
    await a.close()
    await b.close()


async def storm(args: argparse.Namespace) -> None:
    peers = await raw_peers(args.port, args.peers)
    print("ready", flush=True)
    await read_command()
    linger = struct.pack("ii", 1, 0)  # close with a reset, as crashing peers do
    for peer in peers:
        assert peer.transport is not None
        sock = peer.transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        peer.transport.abort()
    emit({"aborted": len(peers)})


async def stall(args: argparse.Namespace) -> None:
    stalled = await raw_peers(args.port, args.peers)
    (feeder,) = await raw_peers(args.port, 1)
    for peer in stalled:
        assert peer.transport is not None
        peer.transport.pause_reading()  # the kernel buffers fill, then the server's
    print("ready", flush=True)
    await read_command()
    assert feeder.transport is not None
    nick = json.loads(json.loads(feeder.hello)["line"])["nick"]
    frame = encode_frame(MessageType.PUBMSG, public_line(nick, "hp2", "x" * args.size))
    for _ in range(args.messages):
        feeder.transport.write(frame)
        await asyncio.sleep(1 / args.rate)
    for peer in stalled:  # read again: only a reading socket sees that it was cut
        peer.transport.resume_reading()  # type: ignore[union-attr]
    await asyncio.sleep(2.0)
    emit({"sent": args.messages, "cut": sum(1 for p in stalled if p.closed.done())})
    await read_command()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("victim", "storm", "stall"), required=True)
    parser.add_argument("--peers", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    run = {"victim": victim, "storm": storm, "stall": stall}[args.mode]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
