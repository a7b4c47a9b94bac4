"""A raw P2P conversation with the real node, every payload decoded by our codecs.

The 24-byte framing is written inline here on purpose: these tests check the
payload codecs against the node, independently of the framing kernel.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from peerpool.bitcoin.messages import (
    PROTOCOL_VERSION,
    AuthCh,
    GetHeaders,
    Headers,
    Inv,
    InvType,
    Message,
    NetworkAddress,
    Ping,
    Pong,
    Protoconf,
    Reject,
    RejectCode,
    SendCmpct,
    SendHeaders,
    Tx,
    VerAck,
    Version,
    decode_message,
)
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker
from peerpool.testing.transactions import invalid_tx, malformed_tx, mempool_tx

pytestmark = pytest.mark.regtest

USER_AGENT = "/peerpool-test:0.1/"
MAX_TEST_PAYLOAD = 4 * 1024 * 1024  # nothing the node sends in these tests comes near it


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


class RawPeer:
    """Just enough of a peer: frames out, frames in (checked), payloads decoded."""

    def __init__(self, node: RegtestNode) -> None:
        self.node = node
        self.magic = node.network.magic
        self.sock = socket.create_connection(("127.0.0.1", node.p2p_port), timeout=30)
        self.received: list[str] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, message: Message) -> None:
        self.send_raw(message.COMMAND, message.encode())

    def send_raw(self, command: str, payload: bytes) -> None:
        header = self.magic + command.encode().ljust(12, b"\0")
        self.sock.sendall(header + struct.pack("<I", len(payload)) + sha256d(payload)[:4] + payload)

    def _read_exact(self, size: int) -> bytes:
        chunks, remaining = [], size
        while remaining:
            chunk = self.sock.recv(min(remaining, 1 << 16))
            if not chunk:
                raise AssertionError("the node closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def receive(self) -> Message:
        header = self._read_exact(24)
        assert header[:4] == self.magic
        command = header[4:16].rstrip(b"\0").decode("ascii")
        length, checksum = struct.unpack("<I4s", header[16:24])
        assert length <= MAX_TEST_PAYLOAD
        payload = self._read_exact(length)
        assert sha256d(payload)[:4] == checksum
        self.received.append(command)
        return decode_message(command, payload)

    def messages(self, timeout: float = 30.0) -> Iterator[Message]:
        """What the node sends, pings answered on the way, until ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive()
            if isinstance(message, Ping):
                self.send(Pong(message.nonce))
            yield message
        raise AssertionError(f"timed out; received {self.received}")

    def wait_for(self, kind: type[Message], timeout: float = 30.0) -> Message:
        for message in self.messages(timeout):
            if isinstance(message, kind):
                return message
        raise AssertionError("unreachable")

    def handshake(self) -> Version:
        ours = Version(
            version=PROTOCOL_VERSION,
            services=0,
            timestamp=int(time.time()),
            receiver=NetworkAddress.from_host("127.0.0.1", self.node.p2p_port, 1),
            sender=NetworkAddress.from_host("0.0.0.0", 0),
            nonce=secrets.randbits(64),
            user_agent=USER_AGENT,
            start_height=0,
            relay=True,
        )
        self.send(ours)
        theirs = self.wait_for(Version)
        assert isinstance(theirs, Version)
        self.send(VerAck())
        self.wait_for(VerAck)
        return theirs


@pytest.fixture
def peer(regtest_node: RegtestNode) -> Iterator[RawPeer]:
    raw_peer = RawPeer(regtest_node)
    yield raw_peer
    raw_peer.close()


def test_handshake_and_the_messages_that_follow(regtest_node: RegtestNode, peer: RawPeer) -> None:
    height = regtest_node.block_count()
    version = peer.handshake()
    assert version.version >= PROTOCOL_VERSION
    assert version.user_agent.startswith("/Bitcoin SV:")
    assert version.start_height == height
    assert version.services & 1  # NODE_NETWORK

    # after verack: protoconf (2 MiB), authch, sendheaders, sendcmpct and ping
    seen: dict[type[Message], Message] = {}
    wanted = {Protoconf, AuthCh, SendHeaders, SendCmpct, Ping}
    for message in peer.messages():
        seen[type(message)] = message
        if wanted <= seen.keys():
            break
    protoconf = seen[Protoconf]
    assert isinstance(protoconf, Protoconf)
    assert protoconf.max_recv_payload_length == 2 * 1024 * 1024
    # the specification says protoconf comes immediately after verack
    assert peer.received[peer.received.index("verack") + 1] == "protoconf"
    sendcmpct = seen[SendCmpct]
    assert isinstance(sendcmpct, SendCmpct) and not sendcmpct.announce

    # the node lists us as a peer with our user agent: it accepted the handshake
    subversions = [p.get("subver") for p in regtest_node.rpc("getpeerinfo")]
    assert USER_AGENT in subversions


def test_ping_is_answered_with_the_same_nonce(peer: RawPeer) -> None:
    peer.handshake()
    nonce = secrets.randbits(64)
    peer.send(Ping(nonce))
    while True:
        pong = peer.wait_for(Pong)
        assert isinstance(pong, Pong)
        if pong.nonce == nonce:
            break


def test_headers_from_genesis_link_up(regtest_node: RegtestNode, peer: RawPeer) -> None:
    peer.handshake()
    height = regtest_node.block_count()
    peer.send(GetHeaders(PROTOCOL_VERSION, (regtest_node.network.genesis_hash,)))
    headers = peer.wait_for(Headers)
    assert isinstance(headers, Headers)
    assert headers.count == min(height, 2000)
    previous = regtest_node.network.genesis_hash
    for header in headers.iter_headers():
        assert header[4:36] == previous
        previous = sha256d(header)
    assert previous[::-1].hex() == regtest_node.rpc("getblockhash", headers.count)


def test_new_blocks_are_announced_by_inv_then_by_headers(
    regtest_node: RegtestNode, peer: RawPeer
) -> None:
    peer.handshake()
    (block_hash,) = regtest_node.generate(1)
    inv = peer.wait_for(Inv)
    assert isinstance(inv, Inv)
    assert (InvType.BLOCK, bytes.fromhex(block_hash)[::-1]) in inv.items

    # The node announces with headers only once it knows we have the parent
    # header: ask for the headers after its tip (none) so that it records that.
    peer.send(SendHeaders())
    tip = bytes.fromhex(regtest_node.best_block_hash())[::-1]
    peer.send(GetHeaders(PROTOCOL_VERSION, (tip,)))
    nothing_new = peer.wait_for(Headers)
    assert isinstance(nothing_new, Headers) and nothing_new.count == 0
    (block_hash,) = regtest_node.generate(1)
    headers = peer.wait_for(Headers)
    assert isinstance(headers, Headers)
    assert headers.count == 1
    assert headers.header(0)[4:36] == tip
    assert sha256d(headers.header(0))[::-1].hex() == block_hash


def test_transactions_over_p2p_accepted_or_rejected(
    regtest_node: RegtestNode, block_maker: BlockMaker, peer: RawPeer
) -> None:
    good, bad = block_maker.mine_coins(2)
    peer.handshake()

    peer.send_raw("tx", malformed_tx())
    reject = peer.wait_for(Reject)
    assert isinstance(reject, Reject)
    assert (reject.message, reject.code) == ("tx", RejectCode.MALFORMED)

    invalid = invalid_tx(bad)
    peer.send(Tx(invalid))
    reject = peer.wait_for(Reject)
    assert isinstance(reject, Reject)
    assert reject.code == RejectCode.INVALID
    assert "bad-txns-in-belowout" in reject.reason
    assert reject.data == sha256d(invalid)

    valid = mempool_tx(good)
    peer.send(Tx(valid))
    txid = sha256d(valid)[::-1].hex()
    deadline = time.monotonic() + 30
    while txid not in regtest_node.rpc("getrawmempool"):
        assert time.monotonic() < deadline, "the valid transaction never reached the mempool"
        time.sleep(0.1)
