"""Handshake and JMP-0005 policy of the directory core, fed exact wire lines.

Issue 8.1 (shapes, require_verified, prefer-verified, expired, out of order)
and 9.3/9.4 (bad input typed and answered, squatters displaced by the owner).
"""

from __future__ import annotations

import json

import pytest

from peerpool.joinmarket.messages import ClientHandshake
from peerpool.joinmarket.nickauth import NickAuthChallenge, NickAuthProof
from peerpool.joinmarket.protocol import NickAuthMode, PrivateMessage, State
from peerpool.joinmarket.server_state import PeerState
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import FakeWriter, identity
from tests.joinmarket.test_server_core import Peer, make_core, raw_handshake

DIR_ID = "127.0.0.1:5222"
OWNER = 1


def frames(writer: FakeWriter) -> list[tuple[int, str]]:
    return [tuple(decode_frame(x)) for x in LineBuffer().feed(writer.take())]


def authenticating(core, n=OWNER, **kw) -> tuple[FakeWriter, object, str, NickAuthChallenge]:
    """A raw peer that advertised nick_auth and got its 795 and 803."""
    writer = FakeWriter()
    conn = core.open(writer)
    hs = ClientHandshake(identity(n).nick, "regtest", features=frozenset({"nick_auth"}), **kw)
    line = hs.to_line()
    core.feed(conn, encode_frame(MessageType.HANDSHAKE, line))
    got = frames(writer)
    assert [t for t, _ in got] == [MessageType.DN_HANDSHAKE, MessageType.NICK_AUTH_CHALLENGE]
    challenge = json.loads(got[1][1])
    assert set(challenge) == {"challenge", "directory-id"}  # exactly, as joinmarket-ng wants
    return writer, conn, line, NickAuthChallenge(challenge["challenge"], challenge["directory-id"])


def result_of(writer: FakeWriter) -> dict:
    (_, line), *_ = [f for f in frames(writer) if f[0] == MessageType.NICK_AUTH_RESULT]
    return json.loads(line)


def test_proof_in_joinmarket_ng_shape_is_verified() -> None:
    core, _ = make_core(directory_id=DIR_ID)
    writer, conn, line, challenge = authenticating(core)
    proof = NickAuthProof.create(identity(OWNER), challenge, line)
    wire = f'{{"pubkey":"{proof.pubkey_hex}","signature":"{proof.signature}"}}'
    core.feed(conn, encode_frame(MessageType.NICK_AUTH_PROOF, wire))
    assert frames(writer) == [(MessageType.NICK_AUTH_RESULT, '{"code":"ok","verified":true}')]
    assert conn.state is PeerState.READY and conn.verified


@pytest.mark.parametrize(
    ("proof", "code"),
    [
        ('{"pubkey":"02' + "ab" * 32 + '"}', "malformed"),
        ("[" * 50_000, "malformed"),  # RecursionError before issue 9.3
        ('{"pubkey":NaN,"signature":"x"}', "malformed"),
        ("{pubkey}", "malformed"),
    ],
)
def test_bad_proofs_get_their_code_and_close(proof: str, code: str) -> None:
    core, _ = make_core(directory_id=DIR_ID)
    writer, conn, _, _ = authenticating(core)
    core.feed(conn, encode_frame(MessageType.NICK_AUTH_PROOF, proof))
    assert result_of(writer) == {"code": code, "verified": False}
    assert writer.closed and conn not in core.conns


def test_someone_elses_signature_is_invalid() -> None:
    core, _ = make_core(directory_id=DIR_ID)
    writer, conn, line, challenge = authenticating(core)
    proof = NickAuthProof.create(identity(9), challenge, line)  # valid, but not our nick's key
    core.feed(conn, encode_frame(MessageType.NICK_AUTH_PROOF, proof.to_line()))
    assert result_of(writer) == {"code": "invalid", "verified": False}


def test_late_proof_is_expired_and_tick_expires_silent_ones() -> None:
    core, clock = make_core(directory_id=DIR_ID, nick_auth_timeout=5.0)
    writer, conn, line, challenge = authenticating(core)
    clock.now += 6
    proof = NickAuthProof.create(identity(OWNER), challenge, line)
    core.feed(conn, encode_frame(MessageType.NICK_AUTH_PROOF, proof.to_line()))
    assert result_of(writer) == {"code": "expired", "verified": False}
    silent, silent_conn, _, _ = authenticating(core, 2)
    clock.now += 6
    core.tick()
    assert result_of(silent) == {"code": "expired", "verified": False}
    assert silent_conn not in core.conns


def test_require_verified_refuses_unproven_peers_with_policy() -> None:
    core, _ = make_core(directory_id=DIR_ID, require_verified=True)
    writer, conn = raw_handshake(core, 3)  # no nick_auth feature
    got = frames(writer)
    assert got[0][0] == MessageType.DN_HANDSHAKE and json.loads(got[0][1])["accepted"] is False
    assert got[1] == (MessageType.NICK_AUTH_RESULT, '{"code":"policy","verified":false}')
    assert writer.closed and conn not in core.conns
    # a client that authenticates gets in
    peer = Peer(core, 4, mode=NickAuthMode.REQUIRE, directory_id=DIR_ID).connect()
    assert peer.proto.state is State.READY and peer.proto.nick_verified


def test_require_verified_without_a_directory_id_refuses_everyone() -> None:
    core, _ = make_core(require_verified=True)
    writer, _ = raw_handshake(core, 3, features=frozenset({"nick_auth"}))
    assert (MessageType.NICK_AUTH_RESULT, '{"code":"policy","verified":false}') in frames(writer)


@pytest.mark.parametrize("msg_type", [803, 805, 807])
def test_nick_auth_messages_after_the_handshake_disconnect(msg_type: int) -> None:
    core, _ = make_core(directory_id=DIR_ID)
    peer = Peer(core, 1, mode=NickAuthMode.PREFER, directory_id=DIR_ID).connect()
    assert peer.conn.state is PeerState.READY
    core.feed(peer.conn, encode_frame(msg_type, '{"code":"ok","verified":true}'))
    assert peer.writer.closed and peer.conn not in core.conns
    assert core.stats.closed_bad_input == 1


def test_proof_before_the_handshake_disconnects() -> None:
    core, _ = make_core(directory_id=DIR_ID)
    writer = FakeWriter()
    conn = core.open(writer)
    core.feed(conn, encode_frame(MessageType.NICK_AUTH_PROOF, "{}"))
    assert writer.aborted and conn not in core.conns


def _squatter(core, mode=NickAuthMode.OFF) -> Peer:
    """Another key's peer claiming OWNER's nick (the nick is only text in 793)."""
    squatter = Peer(core, 50, mode=mode, directory_id=DIR_ID)
    squatter.proto.identity = identity(50)
    writer = squatter.writer
    hs = ClientHandshake(identity(OWNER).nick, "regtest", features=squatter.proto.features)
    core.feed(squatter.conn, encode_frame(MessageType.HANDSHAKE, hs.to_line()))
    frames(writer)
    return squatter


@pytest.mark.parametrize("require", [False, True])
def test_owner_displaces_a_squatter_that_never_answers(require: bool) -> None:
    core, _ = make_core(directory_id=DIR_ID, require_verified=require)
    squatter = _squatter(core, NickAuthMode.PREFER)  # advertises nick_auth, never proves
    assert squatter.conn.state is PeerState.AUTHENTICATING
    owner = Peer(core, OWNER, mode=NickAuthMode.REQUIRE, directory_id=DIR_ID).connect()
    assert owner.proto.state is State.READY and owner.proto.nick_verified
    assert squatter.writer.closed and squatter.conn not in core.conns
    assert core.by_nick[identity(OWNER).nick] is owner.conn and core.stats.displaced == 1


def test_owner_displaces_an_unverified_squatter_and_gets_its_messages() -> None:
    core, _ = make_core(directory_id=DIR_ID)  # prefer-verified: unproven peers served
    squatter = _squatter(core)
    assert squatter.conn.state is PeerState.READY
    sender = Peer(core, 7).connect()
    owner = Peer(core, OWNER, mode=NickAuthMode.REQUIRE, directory_id=DIR_ID).connect()
    assert owner.proto.nick_verified and squatter.writer.closed
    assert (MessageType.DISCONNECT, "") in frames(squatter.writer) or squatter.writer.closed
    sender.events.clear()
    sender.pump()
    # the nick lives on: no departure was announced for it
    assert not any(getattr(e, "entries", None) for e in sender.events)
    sender.proto.send_private(identity(OWNER).nick, "fill", "0 1")
    sender.pump()
    owner.pump()
    assert any(isinstance(e, PrivateMessage) and e.data == "0 1" for e in owner.events)


def test_without_a_directory_id_the_first_claim_holds() -> None:
    core, _ = make_core()
    first = Peer(core, OWNER).connect()
    writer, _ = raw_handshake(core, OWNER, features=frozenset({"nick_auth"}))
    answer = json.loads(frames(writer)[0][1])
    assert answer["accepted"] is False and "in use" in answer["motd"]
    assert first.conn in core.conns


def test_an_unproven_claim_on_a_held_nick_is_refused() -> None:
    core, _ = make_core(directory_id=DIR_ID)
    Peer(core, OWNER, mode=NickAuthMode.REQUIRE, directory_id=DIR_ID).connect()
    writer, _ = raw_handshake(core, OWNER)
    assert "in use" in json.loads(frames(writer)[0][1])["motd"]


@pytest.mark.parametrize(
    "location",
    ["h:²", "h:" + "9" * 5000, "h:0", "h:65536", "h:", ":80", "h h:80", "h;x:80", "\ud800:80"],
)
def test_bad_locations_are_refused_not_raised(location: str) -> None:
    core, _ = make_core()
    writer, conn = raw_handshake(core, 1, location=location)
    answer = json.loads(frames(writer)[0][1])
    assert answer["accepted"] is False and "location" in answer["motd"]
    assert conn not in core.conns


def test_handshake_line_with_a_lone_surrogate_is_bad_input() -> None:
    """The envelope's line itself decodes to a lone surrogate: it could not be
    hashed for nick auth (UnicodeEncodeError before issue 9.3)."""
    core, _ = make_core(directory_id=DIR_ID)
    writer = FakeWriter()
    conn = core.open(writer)
    hs = ClientHandshake(identity(1).nick, "regtest", features=frozenset({"nick_auth"}))
    line = hs.to_line()[:-1] + ', "x": "\ud800"}'
    core.feed(conn, json.dumps({"type": 793, "line": line}).encode() + b"\n")
    assert writer.aborted and core.stats.closed_bad_input == 1 and conn not in core.conns


@pytest.mark.parametrize(
    "line",
    [
        "[" * 50_000,
        '{"nick": ' + "[" * 50_000,
        '{"app-name": "joinmarket", "x": "\ud800"}',
    ],
)
def test_hostile_handshakes_are_typed(line: str) -> None:
    core, _ = make_core()
    writer = FakeWriter()
    conn = core.open(writer)
    core.feed(conn, json.dumps({"type": 793, "line": line}).encode() + b"\n")
    assert writer.closed and conn not in core.conns


def test_deeply_nested_frame_is_bad_input() -> None:
    core, _ = make_core()
    writer = FakeWriter()
    conn = core.open(writer)
    core.feed(conn, b"[" * 50_000 + b"\n")
    assert writer.aborted and core.stats.closed_bad_input == 1 and conn not in core.conns


def test_joinmarket_ng_leniencies() -> None:
    """App-name in any case and a missing location-string are accepted."""
    core, _ = make_core()
    writer = FakeWriter()
    conn = core.open(writer)
    line = json.dumps(
        {
            "app-name": "JoinMarket",
            "directory": False,
            "proto-ver": 5,
            "features": {},
            "nick": identity(1).nick,
            "network": "regtest",
        }
    )
    core.feed(conn, encode_frame(MessageType.HANDSHAKE, line))
    assert json.loads(frames(writer)[0][1])["accepted"] is True
    assert conn.location == "NOT-SERVING-ONION"
