"""Load generator for the JoinMarket directory benchmarks, run as a separate process.

    python benches/jm_loadgen.py --port P --mode handshake|public|private --peers N --messages M

It prepares (identities, and for relay modes the connections and handshakes),
prints ``ready``, waits for ``go`` on stdin, runs the timed phase and prints one
JSON line: ``{"elapsed": s, "expected": n, "received": n, "failed": n}``. A
delivery is one line arriving at one peer. Receivers only count newlines, so
the generator stays cheaper than the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.messages import ClientHandshake, private_line, public_line
from peerpool.joinmarket.wire import MessageType, encode_frame

BATCH = 10  # frames a sender writes before yielding: traffic arrives in pieces, not one blob


class Totals:
    def __init__(self) -> None:
        self.received = 0
        self.expected = 0
        self.done = asyncio.Event()

    def add(self, n: int) -> None:
        self.received += n
        if self.expected and self.received >= self.expected:
            self.done.set()


class Peer(asyncio.Protocol):
    def __init__(self, hello: bytes, totals: Totals) -> None:
        self.hello = hello
        self.totals = totals
        self.accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.head = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.hello)

    def data_received(self, data: bytes) -> None:
        if self.accepted.done():
            self.totals.add(data.count(b"\n"))
            return
        self.head += data
        line, sep, rest = self.head.partition(b"\n")
        if not sep:
            return
        answer = json.loads(line)
        ok = (
            answer.get("type") == MessageType.DN_HANDSHAKE
            and json.loads(answer["line"])["accepted"]
        )
        self.accepted.set_result(bool(ok))
        self.totals.add(rest.count(b"\n"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.accepted.done():
            self.accepted.set_result(False)


async def connect(port: int, identity: NickIdentity, totals: Totals, network: str) -> Peer:
    hello = encode_frame(MessageType.HANDSHAKE, ClientHandshake(identity.nick, network).to_line())
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_connection(lambda: Peer(hello, totals), "127.0.0.1", port)
    if not await asyncio.wait_for(peer.accepted, 60):
        raise ConnectionError(f"{identity.nick} not accepted")
    return peer


async def send_all(peer: Peer, frames: list[bytes]) -> None:
    assert peer.transport is not None
    for i in range(0, len(frames), BATCH):
        peer.transport.write(b"".join(frames[i : i + BATCH]))
        await asyncio.sleep(0)


async def run(args: argparse.Namespace) -> dict[str, float]:
    ids = [NickIdentity() for _ in range(args.peers)]
    totals = Totals()
    result: dict[str, float] = {"expected": 0, "received": 0, "failed": 0}
    go = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if args.mode == "handshake":
        print("ready", flush=True)
        await go
        start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(connect(args.port, i, totals, args.network) for i in ids), return_exceptions=True
        )
        result["elapsed"] = time.perf_counter() - start
        peers = [p for p in outcomes if isinstance(p, Peer)]
        result["expected"] = args.peers
        result["received"] = len(peers)
        result["failed"] = args.peers - len(peers)
    else:
        peers = list(
            await asyncio.gather(*(connect(args.port, i, totals, args.network) for i in ids))
        )
        await asyncio.sleep(0.2)  # let join traffic settle before counting
        totals.received = 0
        plan: list[tuple[Peer, list[bytes]]] = []
        if args.mode == "public":
            senders = max(1, min(args.senders, args.peers))
            per = args.messages // senders
            for s in range(senders):
                line = public_line(ids[s].nick, "orderbook", "x" * 40)
                plan.append((peers[s], [encode_frame(MessageType.PUBMSG, line)] * per))
            totals.expected = per * senders * (args.peers - 1)
        else:
            pairs = args.peers // 2
            per = args.messages // pairs
            for p in range(pairs):
                a, b = ids[2 * p], ids[2 * p + 1]
                line = private_line(a, b.nick, "fill", "0 100000 " + "ab" * 33 + " commitment")
                plan.append((peers[2 * p], [encode_frame(MessageType.PRIVMSG, line)] * per))
            totals.expected = per * pairs
        print("ready", flush=True)
        await go
        start = time.perf_counter()
        await asyncio.gather(*(send_all(peer, frames) for peer, frames in plan))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(totals.done.wait(), args.timeout)
        result["elapsed"] = time.perf_counter() - start
        result["expected"] = totals.expected
        result["received"] = totals.received
        result["failed"] = max(0, totals.expected - totals.received)
    for peer in peers:
        if peer.transport is not None:
            peer.transport.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("handshake", "public", "private"), required=True)
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--network", default="regtest")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
