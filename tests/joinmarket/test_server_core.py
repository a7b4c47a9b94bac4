"""The directory logic without sockets: client protocols wired to the core by fake writers."""

from __future__ import annotations

import json

import pytest

from peerpool.joinmarket.messages import ClientHandshake, private_line
from peerpool.joinmarket.protocol import (
    DirectoryClientProtocol,
    HandshakeDone,
    NickAuthMode,
    PeersUpdated,
    PrivateMessage,
    PublicMessage,
    State,
)
from peerpool.joinmarket.server_core import Conn, DirectoryCore, PeerState, ServerConfig
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import FakeWriter, identity


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Peer:
    """A client protocol connected to the core through a fake transport."""

    def __init__(self, core: DirectoryCore, n: int, mode=NickAuthMode.OFF, **kw) -> None:
        self.core = core
        self.writer = FakeWriter()
        conn = core.open(self.writer, f"fake:{n}")
        assert conn is not None
        self.conn: Conn = conn
        self.proto = DirectoryClientProtocol(identity(n), "regtest", nick_auth=mode, **kw)
        self.events: list = []

    def pump(self) -> None:
        for _ in range(10):
            out = self.proto.data_to_send()
            if out:
                self.core.feed(self.conn, out)
            back = self.writer.take()
            if back:
                self.proto.receive_data(back)
            self.events += self.proto.events_received()
            if not out and not back:
                return

    def connect(self) -> Peer:
        self.proto.start()
        self.pump()
        return self

    def frames(self) -> list[tuple[int, str]]:
        return [tuple(decode_frame(x)) for x in LineBuffer().feed(self.writer.take())]


def make_core(**kw) -> tuple[DirectoryCore, Clock]:
    clock = Clock()
    cfg = ServerConfig(network="regtest", **kw)
    return DirectoryCore(cfg, identity(200), clock=clock), clock


def raw_handshake(core, n=1, **overrides) -> tuple[FakeWriter, Conn]:
    writer = FakeWriter()
    conn = core.open(writer)
    fields = {"nick": identity(n).nick, "network": "regtest", **overrides}
    core.feed(conn, encode_frame(MessageType.HANDSHAKE, ClientHandshake(**fields).to_line()))
    return writer, conn


def answer_of(writer: FakeWriter) -> dict:
    ((msg_type, line), *_) = [decode_frame(x) for x in LineBuffer().feed(writer.take())]
    assert msg_type == MessageType.DN_HANDSHAKE
    return json.loads(line)


def test_handshake_accepted() -> None:
    core, _ = make_core()
    peer = Peer(core, 1).connect()
    assert peer.proto.state is State.READY
    assert isinstance(peer.events[0], HandshakeDone)
    assert peer.events[0].directory.nick == identity(200).nick
    assert core.stats.accepted == 1 and peer.conn.state is PeerState.READY


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"network": "mainnet"}, "wrong network"),
        ({"app_name": "other"}, "app-name"),
        ({"proto_ver": 4}, "version"),
        ({"nick": "J5short"}, "malformed nick"),
        ({"directory": True}, "directories"),
        ({"location": "no-port"}, "location"),
    ],
)
def test_bad_handshakes_are_refused_then_closed(overrides, reason) -> None:
    core, _ = make_core()
    writer, conn = raw_handshake(core, **overrides)
    answer = answer_of(writer)
    assert answer["accepted"] is False and reason in answer["motd"]
    assert writer.closed and conn not in core.conns
    assert core.stats.rejected == 1


def test_nick_in_use_is_refused() -> None:
    core, _ = make_core()
    Peer(core, 1).connect()
    writer, _ = raw_handshake(core, 1)
    assert "in use" in answer_of(writer)["motd"] and writer.closed


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n",
        b'{"type": "793", "line": "{}"}\r\n',
        encode_frame(MessageType.PUBMSG, "J5x!PUBLIC!orderbook"),  # before the handshake
        b"x" * 70_000,
    ],
)
def test_bad_input_closes_the_connection_and_nothing_else(data) -> None:
    core, _ = make_core()
    other = Peer(core, 2).connect()
    writer = FakeWriter()
    conn = core.open(writer)
    core.feed(conn, data)
    assert writer.aborted and conn not in core.conns
    assert other.conn in core.conns and core.stats.closed_bad_input == 1


def test_public_relay_reaches_everyone_but_the_sender() -> None:
    core, _ = make_core()
    peers = [Peer(core, n).connect() for n in range(1, 6)]
    peers[0].proto.send_public("orderbook")
    peers[0].pump()
    for p in peers[1:]:
        p.pump()
        assert PublicMessage(identity(1).nick, "orderbook") in p.events
    assert peers[0].writer.take() == b""
    assert core.stats.public_deliveries == 4


def test_spoofed_public_and_private_are_dropped() -> None:
    core, _ = make_core()
    a, b = Peer(core, 1).connect(), Peer(core, 2).connect()
    core.feed(a.conn, encode_frame(MessageType.PUBMSG, f"{identity(2).nick}!PUBLIC!orderbook"))
    core.feed(a.conn, encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!"))
    line = private_line(identity(2), identity(2).nick, "fill", "x")  # "from" is not a
    core.feed(a.conn, encode_frame(MessageType.PRIVMSG, line))
    assert b.writer.take() == b""
    assert core.stats.dropped_spoofed == 3
    assert a.conn in core.conns  # dropped, not disconnected


def test_private_relay_to_the_recipient_only() -> None:
    core, _ = make_core()
    a, b, c = (Peer(core, n).connect() for n in (1, 2, 3))
    a.proto.send_private(identity(2).nick, "fill", "0 100")
    a.pump()
    b.pump()
    c.pump()
    assert PrivateMessage(identity(1).nick, "fill", "0 100", identity(1).pubkey_hex) in b.events
    assert not any(isinstance(e, PrivateMessage) for e in c.events)
    a.proto.send_private(identity(9).nick, "fill", "0 100")  # nobody by that nick
    a.pump()
    assert core.stats.private_relayed == 1 and core.stats.dropped_no_recipient == 1


def test_peerlist_and_departures() -> None:
    core, _ = make_core()
    a = Peer(core, 1, location="127.0.0.1:7000").connect()
    b = Peer(core, 2).connect()
    b.proto.request_peerlist()
    b.pump()
    (update,) = [e for e in b.events if isinstance(e, PeersUpdated)]
    assert {e.nick for e in update.entries} == {identity(1).nick, identity(2).nick}
    mine = next(e for e in update.entries if e.nick == identity(1).nick)
    assert mine.location == "127.0.0.1:7000" and "ping" in mine.features
    a.writer.close()
    core.lost(a.conn)
    b.pump()
    left = [e for e in b.events if isinstance(e, PeersUpdated)][-1]
    assert left.entries[0].nick == identity(1).nick and left.entries[0].disconnected


def test_nick_auth_verified_through_the_core() -> None:
    core, _ = make_core(directory_id="127.0.0.1:5222")
    peer = Peer(core, 1, mode=NickAuthMode.REQUIRE, directory_id="127.0.0.1:5222").connect()
    assert peer.proto.state is State.READY and peer.proto.nick_verified
    legacy = Peer(core, 2).connect()  # advertises no nick_auth: accepted unverified
    assert legacy.proto.state is State.READY and not legacy.proto.nick_verified


def test_bad_nick_auth_proof_is_refused() -> None:
    core, _ = make_core(directory_id="127.0.0.1:5222")
    writer, conn = raw_handshake(core, 1, features=frozenset({"nick_auth"}))
    frames = [decode_frame(x) for x in LineBuffer().feed(writer.take())]
    assert [f.type for f in frames] == [MessageType.DN_HANDSHAKE, MessageType.NICK_AUTH_CHALLENGE]
    # a proof signed by someone else's key for our nick
    proof = {"pubkey": identity(9).pubkey_hex, "signature": identity(9).sign("x")}
    core.feed(conn, encode_frame(MessageType.NICK_AUTH_PROOF, json.dumps(proof)))
    (result,) = [decode_frame(x) for x in LineBuffer().feed(writer.take())]
    assert json.loads(result.line) == {"code": "invalid", "verified": False}
    assert writer.closed and identity(1).nick not in core.by_nick


def test_rate_limit_drops_then_disconnects() -> None:
    core, clock = make_core(rate=10.0, burst=5.0, max_rate_violations=20)
    a, b = Peer(core, 1).connect(), Peer(core, 2).connect()
    frame = encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook")
    core.feed(a.conn, frame * 10)
    assert core.stats.public_relayed == 4  # the handshake used one token
    assert core.stats.dropped_rate == 6
    clock.now += 1.0  # 10 tokens back, capped at the burst of 5
    core.feed(a.conn, frame * 5)
    assert core.stats.public_relayed == 9
    core.feed(a.conn, frame * 30)
    assert a.writer.aborted and a.conn not in core.conns
    assert b.conn in core.conns


def test_slow_reader_is_cut() -> None:
    core, _ = make_core(max_write_buffer=1000)
    a, b = Peer(core, 1).connect(), Peer(core, 2).connect()
    b.writer.buffer_size = 5000
    core.feed(a.conn, encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook"))
    assert b.writer.aborted and b.conn not in core.conns and core.stats.closed_slow == 1


def test_timers_ping_idle_peers_and_cut_dead_ones() -> None:
    core, clock = make_core(idle_ping=10, idle_timeout=30, handshake_timeout=5)
    a = Peer(core, 1).connect()
    stuck = FakeWriter()
    core.open(stuck)
    clock.now += 11
    core.tick()
    assert stuck.aborted
    assert a.frames() == [(MessageType.PING, "")]
    core.tick()
    assert a.frames() == []  # one ping per quiet spell
    clock.now += 20
    core.tick()
    assert a.writer.aborted and not core.conns


def test_ping_answered_and_disconnect_honoured() -> None:
    core, _ = make_core()
    a = Peer(core, 1).connect()
    core.feed(a.conn, encode_frame(MessageType.PING, ""))
    assert a.frames() == [(MessageType.PONG, "")]
    core.feed(a.conn, encode_frame(12345, "?") + encode_frame(MessageType.DISCONNECT, ""))
    assert core.stats.dropped_unknown == 1 and a.writer.closed and not core.conns


def test_max_peers() -> None:
    core, _ = make_core(max_peers=1)
    Peer(core, 1)
    extra = FakeWriter()
    assert core.open(extra) is None and extra.aborted


def test_close_all_says_goodbye() -> None:
    core, _ = make_core()
    a = Peer(core, 1).connect()
    core.close_all()
    assert a.frames() == [(MessageType.DISCONNECT, "")] and a.writer.closed


def test_one_read_keeps_the_senders_order_for_each_recipient() -> None:
    core, _ = make_core()
    a, b = Peer(core, 1).connect(), Peer(core, 2).connect()
    me, you = identity(1), identity(2)
    chunk = (
        encode_frame(MessageType.PUBMSG, f"{me.nick}!PUBLIC!one")
        + encode_frame(MessageType.PRIVMSG, private_line(me, you.nick, "two", "x"))
        + encode_frame(MessageType.PRIVMSG, private_line(me, you.nick, "three", "x"))
        + encode_frame(MessageType.PUBMSG, f"{me.nick}!PUBLIC!four")
    )
    core.feed(a.conn, chunk)
    b.pump()
    order = [
        e.body if isinstance(e, PublicMessage) else e.command
        for e in b.events
        if isinstance(e, PublicMessage | PrivateMessage)
    ]
    assert order == ["one", "two", "three", "four"]
