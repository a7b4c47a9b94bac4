"""One py-libp2p host of pylibp2p_peer.py and the commands it answers.

Commands (JSON; ``host`` picks one of the process's hosts, default 0):

- ``dial {addr}`` -> ``{peer_id}``; ``peers`` -> ``{peers: [...]}``; ``disconnect {peer_id}``
- ``send {peer_id, channel, payload}``: one chat frame on the peer's one stream (opened
  if there is none, else the one the peer opened: the Go nodes' one-stream rule)
- ``send_raw {peer_id, data}``: raw bytes on that stream (bad-frame tests)
- ``send_many {peer_id, channel, size, count}``: ``count`` frames, payload = u64 seq +
  filler, one write each (a plain user's loop) -> ``{t_start, t_end}`` (monotonic)
- ``ping {peer_id}`` -> ``{rtt_us}``; ``identify {peer_id}`` -> the peer's identify record
- ``subscribe / unsubscribe {topic}``; ``publish {topic, data}``; ``topic_peers {topic}``
- ``publish_many {topic, size, count, interval, pace}``: payload = u64 send time (ns) +
  filler; ``pace`` waits on py-libp2p's outbound queues (it drops when they are full)
- ``report {mode: "each" | "count"}``; ``reset``; ``counts`` -> what arrived; ``wait_counts {dm, topic,
  within}`` -> ``{dm, topic, t_last_dm, t_last_topic, latencies_us, out_of_order}``
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair, PrivateKey
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_ID
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.identity.identify.identify import ID as IDENTIFY_ID
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.floodsub import FloodSub
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service
from libp2p.utils.varint import read_length_prefixed_protobuf
from pylibp2p_chat import PROTOCOL, ChatFrameDecoder, ChatFrameError, encode_frame

CHAT = TProtocol(PROTOCOL)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load_key_pair(path: str) -> KeyPair:
    """A libp2p protobuf PrivateKey (KeyType 1 = Ed25519) as go-libp2p writes it.

    go-libp2p (and rust-libp2p) put 64 bytes in Data (seed + public key); py-libp2p's
    own Ed25519PrivateKey.from_bytes takes only the 32-byte seed and rejects the 64, so
    the protobuf is read here and the public half checked against the seed.
    """
    with open(path, "rb") as f:
        pb = PrivateKey.deserialize_from_protobuf(f.read())
    if pb.key_type != 1:
        raise ValueError(f"key type {pb.key_type} is not Ed25519")
    data = bytes(pb.data)
    if len(data) not in (32, 64):
        raise ValueError(f"Ed25519 key data is {len(data)} bytes")
    priv = Ed25519PrivateKey.from_bytes(data[:32])
    pub = priv.get_public_key()
    if len(data) == 64 and pub.to_bytes() != data[32:]:
        raise ValueError("public half of the key file does not match its seed")
    return KeyPair(priv, pub)


class PeerHost:
    def __init__(self, host: Any, pubsub: Pubsub | None, nursery: trio.Nursery) -> None:
        self.host = host
        self.pubsub = pubsub
        self.nursery = nursery
        self.streams: dict[str, Any] = {}  # peer id -> the one chat stream we write on
        self.send_locks: dict[str, trio.Lock] = {}
        self.mode = "each"
        self.dm_count = 0
        self.topic_count = 0
        self.t_last_dm = 0.0
        self.t_last_topic = 0.0
        self.last_seq: dict[str, int] = {}
        self.next_seq: dict[str, int] = {}
        self.out_of_order = 0
        self.latencies_us: list[int] = []
        self.subs: dict[str, trio.CancelScope] = {}
        self.changed = trio.Event()  # set on every arrival, for wait_counts
        host.set_stream_handler(CHAT, self._on_inbound_stream)

    def describe(self) -> dict[str, Any]:
        return {
            "peer_id": self.host.get_id().to_base58(),
            "addrs": [str(a) for a in self.host.get_addrs()],
        }

    # --- direct messages -------------------------------------------------------------

    async def _on_inbound_stream(self, stream: Any) -> None:
        peer = stream.muxed_conn.peer_id.to_base58()
        # the Go rule: answer on the stream the other side opened unless we have one
        self.streams.setdefault(peer, stream)
        await self._read_stream(peer, stream, "inbound")

    async def _stream_for(self, peer: str) -> Any:
        stream = self.streams.get(peer)
        if stream is None:
            stream = await self.host.new_stream(ID.from_base58(peer), [CHAT])
            if peer in self.streams:  # the peer's stream arrived while we negotiated
                await stream.close()
                return self.streams[peer]
            self.streams[peer] = stream
            self.nursery.start_soon(self._read_stream, peer, stream, "outbound")
        return stream

    async def _read_stream(self, peer: str, stream: Any, direction: str) -> None:
        decoder = ChatFrameDecoder()
        reason = "eof"
        try:
            while True:
                data = await stream.read(1 << 16)
                if not data:
                    break
                for channel, payload in decoder.feed(data):
                    self._on_dm(peer, channel, payload, direction)
        except ChatFrameError as exc:
            reason = f"bad_frame: {exc}"
            await stream.reset()
        except Exception as exc:  # reset/closed connection: report, do not crash
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            if self.streams.get(peer) is stream:
                del self.streams[peer]
            emit(
                {
                    "event": "stream_closed",
                    "peer_id": peer,
                    "direction": direction,
                    "reason": reason,
                }
            )

    def _on_dm(self, peer: str, channel: str, payload: bytes, direction: str) -> None:
        self.dm_count += 1
        self.t_last_dm = time.monotonic()
        if self.mode == "count":
            if len(payload) >= 8:
                (seq,) = struct.unpack_from(">Q", payload)
                if seq != self.last_seq.get(peer, -1) + 1:
                    self.out_of_order += 1
                self.last_seq[peer] = seq
        else:
            emit(
                {
                    "event": "dm",
                    "peer_id": peer,
                    "channel": channel,
                    "payload": b64(payload),
                    "stream": direction,
                }
            )
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def _write(self, peer: str, data: bytes) -> None:
        stream = await self._stream_for(peer)
        lock = self.send_locks.setdefault(peer, trio.Lock())
        async with lock:  # frames from concurrent commands must not interleave
            await stream.write(data)

    # --- pub/sub --------------------------------------------------------------------

    async def _read_topic(self, topic: str, sub: Any, scope: trio.CancelScope) -> None:
        with scope:
            async for msg in sub:
                now = time.time_ns()
                self.topic_count += 1
                self.t_last_topic = time.monotonic()
                if self.mode == "count":
                    if len(msg.data) >= 8:
                        (sent,) = struct.unpack_from(">Q", msg.data)
                        self.latencies_us.append((now - sent) // 1000)
                else:
                    emit(
                        {
                            "event": "topic",
                            "topic": topic,
                            "source": ID(msg.from_id).to_base58() if msg.from_id else None,
                            "data": b64(msg.data),
                        }
                    )
                self._wake()

    def _need_pubsub(self) -> Pubsub:
        if self.pubsub is None:
            raise RuntimeError("started with --pubsub none")
        return self.pubsub

    # --- the commands ----------------------------------------------------------------

    async def handle(self, c: dict[str, Any]) -> dict[str, Any] | None:
        op = c["cmd"]
        if op == "dial":
            info = info_from_p2p_addr(multiaddr.Multiaddr(c["addr"]))
            with trio.fail_after(float(c.get("within", 10))):
                await self.host.connect(info)
            return {"peer_id": info.peer_id.to_base58()}
        if op == "peers":
            return {"peers": [p.to_base58() for p in self.host.get_connected_peers()]}
        if op == "disconnect":
            await self.host.disconnect(ID.from_base58(c["peer_id"]))
            return None
        if op == "send":
            await self._write(
                c["peer_id"], encode_frame(c["channel"], base64.b64decode(c["payload"]))
            )
            return None
        if op == "send_raw":
            await self._write(c["peer_id"], base64.b64decode(c["data"]))
            return None
        if op == "send_many":
            filler = b"\xab" * (int(c["size"]) - 8)
            peer, channel = c["peer_id"], c["channel"]
            await self._stream_for(peer)
            first = self.next_seq.get(peer, 0)  # numbering goes on across calls (rounds)
            t0 = time.monotonic()
            for seq in range(first, first + int(c["count"])):
                await self._write(peer, encode_frame(channel, struct.pack(">Q", seq) + filler))
            self.next_seq[peer] = first + int(c["count"])
            return {"t_start": t0, "t_end": time.monotonic()}
        if op == "ping":
            stream = await self.host.new_stream(ID.from_base58(c["peer_id"]), [PING_ID])
            t0 = time.perf_counter()
            await perform_ping_roundtrip(stream)
            rtt = time.perf_counter() - t0
            await stream.close()
            return {"rtt_us": int(rtt * 1e6)}
        if op == "identify":
            return await self._identify(c["peer_id"])
        if op == "subscribe":
            sub = await self._need_pubsub().subscribe(c["topic"])
            scope = trio.CancelScope()
            self.subs[c["topic"]] = scope
            self.nursery.start_soon(self._read_topic, c["topic"], sub, scope)
            return None
        if op == "unsubscribe":
            await self._need_pubsub().unsubscribe(c["topic"])
            self.subs.pop(c["topic"]).cancel()
            return None
        if op == "publish":
            await self._need_pubsub().publish(c["topic"], base64.b64decode(c["data"]))
            return None
        if op == "publish_many":
            ps, filler = self._need_pubsub(), b"\xcd" * (int(c["size"]) - 8)
            interval = float(c.get("interval", 0))
            pace = bool(c.get("pace", False))
            t0 = time.monotonic()
            for _ in range(int(c["count"])):
                await ps.publish(c["topic"], struct.pack(">Q", time.time_ns()) + filler)
                if interval:
                    await trio.sleep(interval)
                if pace:  # see _pace
                    await self._pace(ps)
            return {"t_start": t0, "t_end": time.monotonic()}
        if op == "topic_peers":
            peers = self._need_pubsub().peer_topics.get(c["topic"], set())
            return {"peers": sorted(p.to_base58() for p in peers)}
        if op == "report":
            self.mode = c["mode"]
            return None
        if op == "reset":  # between benchmark rounds (sequence numbers go on)
            self.dm_count = self.topic_count = self.out_of_order = 0
            self.latencies_us = []
            return None
        if op == "counts":
            return self._counts(with_latencies=False)
        if op == "wait_counts":
            with trio.move_on_after(float(c.get("within", 30))):
                while self.dm_count < int(c.get("dm", 0)) or self.topic_count < int(
                    c.get("topic", 0)
                ):
                    await self.changed.wait()
            return self._counts(with_latencies=True)
        raise ValueError(f"unknown command {op!r}")

    @staticmethod
    async def _pace(ps: Pubsub) -> None:
        """Wait while any peer's outbound RPC queue is more than half full.

        py-libp2p 0.8 queues at most 32 RPCs per peer (rpc_queue.OutBoundQueueSize, as
        go-libp2p does) and drops what does not fit, logged at debug level only: a
        publisher that outruns its slowest peer loses messages. Pacing on the queue
        lengths is the back-pressure py-libp2p itself does not apply.
        """
        while any(len(q) > 16 for q in ps.peer_queues.values()):
            await trio.sleep(0.0005)

    def _counts(self, *, with_latencies: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dm": self.dm_count,
            "topic": self.topic_count,
            "t_last_dm": self.t_last_dm,
            "t_last_topic": self.t_last_topic,
            "out_of_order": self.out_of_order,
        }
        if with_latencies:
            out["latencies_us"] = self.latencies_us
        return out

    async def _identify(self, peer: str) -> dict[str, Any]:
        """Ask the peer for its identify record ourselves (not the peerstore's copy)."""
        stream = await self.host.new_stream(ID.from_base58(peer), [IDENTIFY_ID])
        with trio.fail_after(10):
            raw = await read_length_prefixed_protobuf(stream, use_varint_format=True)
        await stream.close()
        rec = parse_identify_response(raw)
        key_id = ID.from_pubkey(deserialize_public_key(rec.public_key)).to_base58()
        return {
            "protocol_version": rec.protocol_version,
            "agent_version": rec.agent_version,
            "protocols": list(rec.protocols),
            "listen_addrs": [str(multiaddr.Multiaddr(a)) for a in rec.listen_addrs],
            "observed_addr": str(multiaddr.Multiaddr(rec.observed_addr))
            if rec.observed_addr
            else None,
            "key_peer_id": key_id,
        }


@asynccontextmanager
async def open_hosts(args: Any, first_key: KeyPair | None) -> AsyncIterator[list[PeerHost]]:
    async with AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        hosts = []
        for i in range(args.hosts):
            kp = first_key if (i == 0 and first_key) else None
            host = _make_host(kp, args)
            await stack.enter_async_context(host.run([multiaddr.Multiaddr(args.listen)]))
            pubsub = None
            if args.pubsub != "none":
                router = _make_router(args)
                pubsub = Pubsub(host, router)
                await stack.enter_async_context(background_trio_service(pubsub))
                if hasattr(router, "run"):  # GossipSub is a service (heartbeat); FloodSub is not
                    await stack.enter_async_context(background_trio_service(router))
                await pubsub.wait_until_ready()
            hosts.append(PeerHost(host, pubsub, nursery))
        yield hosts
        nursery.cancel_scope.cancel()


def _make_host(kp: KeyPair | None, args: Any) -> Any:
    from libp2p import generate_new_ed25519_identity

    kp = kp or generate_new_ed25519_identity()
    host = new_host(
        key_pair=kp,
        # Noise only: py-libp2p's default list also offers plaintext, secio and TLS
        sec_opt={NOISE_ID: NoiseTransport(kp, noise_privkey=new_x25519_key_pair().private_key)},
        muxer_preference="YAMUX" if args.muxer == "yamux" else "MPLEX",
        listen_addrs=[multiaddr.Multiaddr(args.listen)],
        enable_mDNS=False,
        enable_upnp=False,
        bootstrap=None,
    )
    # py-libp2p 0.8's swarm runs an auto-connector that keeps dialing every peer of its
    # peerstore (learnt through identify, redialled after a disconnect) until it holds
    # (low + high watermark) / 2 = 150 connections; its config cannot turn it off without
    # also making the pruner close everything above the high watermark. A test peer
    # dials only when told, so its one entry point is replaced by a no-op.
    auto = getattr(host.get_network(), "auto_connector", None)
    if auto is not None:
        auto.maybe_connect = _no_auto_connect
    return host


async def _no_auto_connect() -> None:
    return None


def _make_router(args: Any) -> Any:
    if args.pubsub == "floodsub":
        return FloodSub([TProtocol("/floodsub/1.0.0")])
    d = args.degree
    return GossipSub(
        protocols=[TProtocol(p) for p in args.gossip_protocols.split(",")],
        degree=d,
        degree_low=max(1, d - 2),
        degree_high=d * 2,
        # py-libp2p's constructor default is 120 s, which leaves meshes unformed for minutes
        heartbeat_interval=1,
        spam_protection_enabled=args.rate_limit > 0,
        max_messages_per_topic_per_second=args.rate_limit or 10.0,
    )
