"""Load generator for the JoinMarket directory benchmarks, run as a separate process.

    python benches/jm_loadgen.py --port P --mode handshake|public|private|paced --peers N --messages M

It prepares (identities, and for relay modes the connections and handshakes),
prints ``ready``, waits for ``go`` on stdin, runs the timed phase and prints one
JSON line: ``{"elapsed": s, "expected": n, "received": n, "failed": n}``. A
delivery is one line arriving at one peer. Receivers only count newlines, so
the generator stays cheaper than the server it measures.

``paced``: ``--senders`` peers offer ``--rate`` public messages per second in
total, each written alone (one message per read at the server), for
``--duration`` s. Each message carries its send time; ``--sample`` of the
receivers parse every line and record the delivery latency (the others only
count, which keeps the generator cheap), so the result adds ``p50_ms``,
``p99_ms`` and ``max_ms`` over the sampled deliveries.
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
        self.latencies: list[float] | None = None  # set on the sampled receivers
        self.partial = b""
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
            if self.latencies is not None:
                self._sample(data)
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

    def _sample(self, data: bytes) -> None:
        now = time.monotonic_ns()
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        assert self.latencies is not None
        for line in lines:
            mark = line.find(b" t=")
            if mark >= 0:
                end = line.find(b" ", mark + 3)
                self.latencies.append((now - int(line[mark + 3 : end])) / 1e6)

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


async def paced(peers: list[Peer], ids: list[NickIdentity], args: argparse.Namespace,
                totals: Totals) -> dict[str, float]:  # fmt: skip
    senders = max(1, min(args.senders, len(peers)))
    per_sender = args.rate / senders
    count = int(per_sender * args.duration)
    for peer in peers[senders : senders + args.sample]:
        peer.latencies = []
    totals.expected = count * senders * (len(peers) - 1)

    async def send(peer: Peer, ident: NickIdentity, offset: float) -> None:
        assert peer.transport is not None
        loop = asyncio.get_running_loop()
        start = loop.time() + offset
        for seq in range(count):
            delay = start + seq / per_sender - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = f"hp2 {seq} t={time.monotonic_ns()} {'x' * 24}"
            peer.transport.write(encode_frame(MessageType.PUBMSG, public_line(ident.nick, body)))

    start = time.perf_counter()
    # senders start staggered across one period, so their messages interleave
    await asyncio.gather(*(send(peers[s], ids[s], s / args.rate) for s in range(senders)))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(totals.done.wait(), args.timeout)
    elapsed = time.perf_counter() - start
    latencies = sorted(x for p in peers if p.latencies for x in p.latencies)
    n = len(latencies)
    return {
        "elapsed": elapsed,
        "expected": totals.expected,
        "received": totals.received,
        "failed": max(0, totals.expected - totals.received),
        "offered_per_s": count * senders / args.duration,
        "sampled": n,
        "p50_ms": latencies[n // 2] if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] if n else 0.0,
        "max_ms": latencies[-1] if n else 0.0,
    }


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
        if args.mode == "paced":
            print("ready", flush=True)
            await go
            result = await paced(peers, ids, args, totals)
            for peer in peers:
                if peer.transport is not None:
                    peer.transport.close()
            return result
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
    parser.add_argument(
        "--mode", choices=("handshake", "public", "private", "paced"), required=True
    )
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--network", default="regtest")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced: messages/s in total")
    parser.add_argument("--duration", type=float, default=5.0, help="paced: seconds of sending")
    parser.add_argument("--sample", type=int, default=20, help="paced: receivers timing lines")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
