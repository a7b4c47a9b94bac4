"""The sans-I/O client protocol, driven by bytes a fake directory would send."""

from __future__ import annotations

import json

import pytest

from peerpool.errors import (
    DirectoryConnectionError,
    HandshakeRejectedError,
    LineTooLongError,
    MalformedLineError,
    NickAuthError,
)
from peerpool.joinmarket.messages import DirectoryHandshake, private_line
from peerpool.joinmarket.nickauth import NickAuthChallenge, NickAuthProof, NickAuthResult
from peerpool.joinmarket.protocol import (
    DirectoryClientProtocol,
    Dropped,
    HandshakeDone,
    NickAuthMode,
    PeersUpdated,
    PrivateMessage,
    PublicMessage,
    State,
)
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import identity

DIRECTORY = identity(100)


def sent(proto: DirectoryClientProtocol) -> list[tuple[int, str]]:
    return [tuple(decode_frame(x)) for x in LineBuffer().feed(proto.data_to_send())]


def answer(accepted=True, network="regtest", features=frozenset(), lo=5, hi=5) -> bytes:
    hs = DirectoryHandshake(DIRECTORY.nick, network, accepted, "motd", features, lo, hi)
    return encode_frame(MessageType.DN_HANDSHAKE, hs.to_line())


def ready(mode=NickAuthMode.OFF, n=1) -> DirectoryClientProtocol:
    proto = DirectoryClientProtocol(identity(n), "regtest", nick_auth=mode)
    proto.start()
    proto.data_to_send()
    proto.receive_data(answer())
    assert proto.state is State.READY
    proto.events_received()
    return proto


def test_handshake_is_sent_first_and_completes() -> None:
    proto = DirectoryClientProtocol(identity(1), "regtest")
    with pytest.raises(DirectoryConnectionError):
        proto.send_public("orderbook")
    proto.start()
    ((msg_type, line),) = sent(proto)
    assert msg_type == MessageType.HANDSHAKE
    hs = json.loads(line)
    assert hs["nick"] == identity(1).nick and hs["network"] == "regtest"
    assert hs["features"] == {"nick_auth": True, "peerlist_features": True, "ping": True}
    proto.receive_data(answer())
    (event,) = proto.events_received()
    assert isinstance(event, HandshakeDone) and not event.nick_verified
    assert proto.state is State.READY


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"accepted": False}, "refused"),
        ({"network": "mainnet"}, "network"),
        ({"lo": 6, "hi": 7}, "versions"),
    ],
)
def test_bad_directory_handshakes(kwargs, match) -> None:
    proto = DirectoryClientProtocol(identity(1), "regtest")
    proto.start()
    with pytest.raises(HandshakeRejectedError, match=match):
        proto.receive_data(answer(**kwargs))


def test_nick_auth_flow() -> None:
    proto = DirectoryClientProtocol(
        identity(1), "regtest", nick_auth=NickAuthMode.REQUIRE, directory_id="127.0.0.1:5222"
    )
    proto.start()
    ((_, hs_line),) = sent(proto)
    proto.receive_data(answer(features=frozenset({"nick_auth"})))
    assert proto.state is State.AUTHENTICATING
    challenge = NickAuthChallenge.fresh("127.0.0.1:5222")
    proto.receive_data(encode_frame(MessageType.NICK_AUTH_CHALLENGE, challenge.to_line()))
    ((msg_type, proof_line),) = sent(proto)
    assert msg_type == MessageType.NICK_AUTH_PROOF
    NickAuthProof.from_line(proof_line).verify(challenge, hs_line, identity(1).nick)
    proto.receive_data(
        encode_frame(MessageType.NICK_AUTH_RESULT, NickAuthResult("ok", True).to_line())
    )
    (event,) = proto.events_received()
    assert isinstance(event, HandshakeDone) and event.nick_verified


def test_required_nick_auth_refuses_a_directory_without_it() -> None:
    proto = DirectoryClientProtocol(identity(1), "regtest", nick_auth=NickAuthMode.REQUIRE)
    proto.start()
    with pytest.raises(HandshakeRejectedError, match="nick auth"):
        proto.receive_data(answer())


def test_challenge_for_another_directory_is_not_answered() -> None:
    for mode in (NickAuthMode.REQUIRE, NickAuthMode.PREFER):
        proto = DirectoryClientProtocol(identity(1), "regtest", nick_auth=mode, directory_id="a:1")
        proto.start()
        proto.data_to_send()
        proto.receive_data(answer(features=frozenset({"nick_auth"})))
        frame = encode_frame(
            MessageType.NICK_AUTH_CHALLENGE, NickAuthChallenge.fresh("b:1").to_line()
        )
        with pytest.raises(NickAuthError, match="expected 'a:1'"):
            proto.receive_data(frame)
        assert sent(proto) == []  # no proof that could be relayed elsewhere


def test_failed_result_in_prefer_mode_continues_unverified() -> None:
    proto = DirectoryClientProtocol(
        identity(1), "regtest", nick_auth=NickAuthMode.PREFER, directory_id="x:1"
    )
    proto.start()
    proto.receive_data(answer(features=frozenset({"nick_auth"})))
    proto.receive_data(
        encode_frame(MessageType.NICK_AUTH_CHALLENGE, NickAuthChallenge.fresh("x:1").to_line())
    )
    proto.receive_data(
        encode_frame(MessageType.NICK_AUTH_RESULT, NickAuthResult("invalid", False).to_line())
    )
    assert proto.state is State.READY and not proto.nick_verified


def test_ping_is_answered_with_pong() -> None:
    proto = ready()
    proto.receive_data(encode_frame(MessageType.PING, ""))
    assert sent(proto) == [(MessageType.PONG, "")]


def test_private_messages_verified_or_dropped() -> None:
    proto = ready()
    me, maker, mallory = identity(1), identity(2), identity(9)
    good = private_line(maker, me.nick, "sw0reloffer", "0 1 2 3 0.1")
    spoof = maker.nick + private_line(mallory, me.nick, "sw0reloffer", "0 1 2 3 0.1")[16:]
    not_us = private_line(maker, identity(3).nick, "fill", "x")
    stream = b"".join(
        encode_frame(MessageType.PRIVMSG, x) for x in (good, spoof, not_us, "garbage")
    )
    proto.receive_data(stream)
    events = proto.events_received()
    assert events[0] == PrivateMessage(maker.nick, "sw0reloffer", "0 1 2 3 0.1", maker.pubkey_hex)
    assert [type(e) for e in events[1:]] == [Dropped, Dropped, Dropped]
    assert "does not belong" in events[1].reason


def test_public_messages_and_own_echo() -> None:
    proto = ready()
    proto.receive_data(
        encode_frame(MessageType.PUBMSG, f"{identity(2).nick}!PUBLIC!orderbook")
        + encode_frame(MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook")
        + encode_frame(MessageType.PUBMSG, f"{identity(2).nick}!{identity(1).nick}!x")
    )
    events = proto.events_received()
    assert events[0] == PublicMessage(identity(2).nick, "orderbook")
    assert isinstance(events[1], Dropped) and len(events) == 2


def test_peerlist_and_bad_peerlist() -> None:
    proto = ready()
    nick = identity(2).nick
    proto.receive_data(
        encode_frame(MessageType.PEERLIST, f"{nick};127.0.0.1:1;F:ping")
        + encode_frame(MessageType.PEERLIST, "garbage;;;;")
    )
    first, second = proto.events_received()
    assert isinstance(first, PeersUpdated) and first.entries[0].features == {"ping"}
    assert isinstance(second, Dropped)


def test_unknown_type_and_early_messages_are_dropped() -> None:
    proto = DirectoryClientProtocol(identity(1), "regtest", nick_auth=NickAuthMode.OFF)
    proto.start()
    proto.receive_data(encode_frame(MessageType.PUBMSG, "J5x!PUBLIC!orderbook"))
    assert isinstance(proto.events_received()[0], Dropped)
    proto.receive_data(answer())
    proto.events_received()
    proto.receive_data(encode_frame(797, "") + encode_frame(12345, "x"))
    assert [type(e) for e in proto.events_received()] == [Dropped, Dropped]


def test_directory_garbage_is_fatal_and_typed() -> None:
    proto = ready()
    with pytest.raises(MalformedLineError):
        proto.receive_data(b"{not json}\r\n")
    proto = ready()
    with pytest.raises(LineTooLongError):
        proto.receive_data(b"x" * (70 * 1024))


def test_outgoing_messages() -> None:
    proto = ready()
    proto.send_public("orderbook")
    proto.send_private(identity(2).nick, "fill", "0 1")
    proto.request_peerlist()
    out = sent(proto)
    assert out[0] == (MessageType.PUBMSG, f"{identity(1).nick}!PUBLIC!orderbook")
    assert out[1][0] == MessageType.PRIVMSG and out[1][1].startswith(
        f"{identity(1).nick}!{identity(2).nick}!fill 0 1 {identity(1).pubkey_hex} "
    )
    assert out[2] == (MessageType.GETPEERLIST, "")
    proto.send_disconnect()
    assert sent(proto) == [(MessageType.DISCONNECT, "")]
    assert proto.state is State.CLOSED
