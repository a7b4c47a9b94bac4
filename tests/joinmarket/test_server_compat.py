"""What joinmarket-ng clients rely on in a directory (issue 8.2), fed exact lines."""

from __future__ import annotations

from peerpool.joinmarket.messages import private_line
from peerpool.joinmarket.protocol import PeersUpdated, PrivateMessage
from peerpool.joinmarket.server_state import ServerConfig
from peerpool.joinmarket.wire import MessageType, encode_frame
from tests.joinmarket.helpers import FakeWriter, identity
from tests.joinmarket.test_server_core import Peer, make_core, raw_handshake

MAKER_ONION = "a" * 56 + ".onion:5222"


def test_defaults_match_joinmarket_ng() -> None:
    cfg = ServerConfig("mainnet")
    assert (cfg.rate, cfg.burst, cfg.max_rate_violations) == (500.0, 1000.0, None)
    assert (cfg.idle_ping, cfg.idle_timeout) == (600.0, 1500.0)


def test_privmsg_from_an_onion_sender_is_followed_by_its_location() -> None:
    core, _ = make_core()
    maker = Peer(core, 1, location=MAKER_ONION).connect()
    taker = Peer(core, 2).connect()
    maker.writer.take()
    taker.writer.take()
    line = private_line(identity(1), identity(2).nick, "pubkey", "abc")
    core.feed(maker.conn, encode_frame(MessageType.PRIVMSG, line))
    expected = f"{identity(1).nick};{MAKER_ONION};F:peerlist_features+ping"
    assert taker.frames() == [(MessageType.PRIVMSG, line), (MessageType.PEERLIST, expected)]
    assert core.stats.locations_forwarded == 1
    # the other way round: the taker serves no onion, so only the 685
    back = private_line(identity(2), identity(1).nick, "fill", "0")
    core.feed(taker.conn, encode_frame(MessageType.PRIVMSG, back))
    assert maker.frames() == [(MessageType.PRIVMSG, back)]


def test_location_forwarded_without_features_to_a_reference_peer() -> None:
    core, _ = make_core()
    maker = Peer(core, 1, location=MAKER_ONION).connect()
    writer, _ = raw_handshake(core, 2)  # a reference client: no peerlist_features
    writer.take()
    line = private_line(identity(1), identity(2).nick, "pubkey", "abc")
    core.feed(maker.conn, encode_frame(MessageType.PRIVMSG, line))
    data = writer.take()
    assert f"{identity(1).nick};{MAKER_ONION}".encode() in data and b"F:" not in data


def test_recipient_client_learns_the_location() -> None:
    core, _ = make_core()
    maker = Peer(core, 1, location=MAKER_ONION).connect()
    taker = Peer(core, 2).connect()
    maker.proto.send_private(identity(2).nick, "pubkey", "abc")
    maker.pump()
    taker.pump()
    updates = [e for e in taker.events if isinstance(e, PeersUpdated)]
    assert updates[-1].entries[0].location == MAKER_ONION
    assert any(isinstance(e, PrivateMessage) for e in taker.events)


def test_privmsg_to_oneself_is_relayed_back() -> None:
    core, _ = make_core()
    peer = Peer(core, 1).connect()
    peer.writer.take()
    line = private_line(identity(1), identity(1).nick, "ping", "x")
    core.feed(peer.conn, encode_frame(MessageType.PRIVMSG, line))
    assert peer.frames() == [(MessageType.PRIVMSG, line)]


def test_an_ordinary_burst_of_2000_is_not_a_disconnect() -> None:
    core, clock = make_core(rate=500.0, burst=1000.0)
    a, b = Peer(core, 1).connect(), Peer(core, 2).connect()
    frame = encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook")
    core.feed(a.conn, frame * 2000)
    assert a.conn in core.conns and not a.writer.closed
    assert core.stats.public_relayed == 999  # the burst, less the handshake's token
    assert core.stats.dropped_rate == 1001
    clock.now += 2.0  # refilled at 500/s: the next burst is relayed again
    core.feed(a.conn, frame * 1000)
    assert core.stats.public_relayed == 1999 and b.conn in core.conns


def test_heartbeat_pings_ping_peers_and_probes_the_others() -> None:
    core, clock = make_core(idle_ping=10, idle_timeout=30)
    modern = Peer(core, 1).connect()  # advertises ping
    writer, legacy = raw_handshake(core, 2)  # reference client: no features
    modern.writer.take()
    writer.take()
    clock.now += 11
    core.tick()
    assert modern.frames() == [(MessageType.PING, "")]
    probe = f"{identity(200).nick}!PUBLIC!orderbook"
    assert writer.take() == encode_frame(MessageType.PUBMSG, probe)
    # the legacy maker answers the probe with its offers (to the directory's nick)
    answer = private_line(identity(2), identity(200).nick, "sw0reloffer", "0 1 2 0 0.1")
    clock.now += 15
    core.feed(legacy, encode_frame(MessageType.PRIVMSG, answer))
    clock.now += 10  # 36 s since the modern peer spoke, 10 s since the legacy one
    core.tick()
    assert modern.writer.aborted and modern.conn not in core.conns
    assert legacy in core.conns
    clock.now += 31
    core.tick()
    assert legacy not in core.conns and core.stats.closed_idle == 2


def test_missing_location_string_and_capitalised_app_name() -> None:
    core, _ = make_core()
    writer, conn = raw_handshake(core, 1, app_name="JOINMARKET")
    assert conn in core.conns and isinstance(writer, FakeWriter)
