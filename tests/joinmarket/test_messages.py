"""Handshakes, routed lines, signed private messages, nick auth, peerlists."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.errors import BadSignatureError, MalformedLineError
from peerpool.joinmarket.messages import (
    ClientHandshake,
    DirectoryHandshake,
    private_line,
    public_line,
    split_routed,
    verify_private,
)
from peerpool.joinmarket.peerlist import PeerEntry, encode_peerlist, parse_peerlist
from tests.joinmarket.helpers import identity


def test_client_handshake_wire_shape() -> None:
    hs = ClientHandshake("J5abc", "regtest", features=frozenset({"ping"}))
    obj = json.loads(hs.to_line())
    assert obj == {
        "app-name": "joinmarket",
        "directory": False,
        "location-string": "NOT-SERVING-ONION",
        "proto-ver": 5,
        "features": {"ping": True},
        "nick": "J5abc",
        "network": "regtest",
    }
    assert ClientHandshake.from_line(hs.to_line()) == hs


def test_directory_handshake_round_trip() -> None:
    hs = DirectoryHandshake("J5dir", "signet", True, "hello", frozenset({"nick_auth"}))
    assert DirectoryHandshake.from_line(hs.to_line()) == hs
    assert json.loads(hs.to_line())["proto-ver-min"] == 5


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        '{"app-name": "joinmarket"}',
        '{"app-name": "joinmarket", "directory": "no", "location-string": "x", '
        '"proto-ver": 5, "nick": "n", "network": "regtest"}',
        '{"app-name": "joinmarket", "directory": false, "location-string": "x", '
        '"proto-ver": "5", "nick": "n", "network": "regtest"}',
        '{"app-name": "joinmarket", "directory": false, "location-string": "x", '
        '"proto-ver": 5, "nick": "n", "network": "regtest", "features": [1]}',
    ],
)
def test_malformed_handshakes(line: str) -> None:
    with pytest.raises(MalformedLineError):
        ClientHandshake.from_line(line)


def test_routed_split_keeps_bangs_in_body() -> None:
    r = split_routed("J5a!J5b!sw0reloffer 0 1 2 3 0.1!tbond AAAA pk sig")
    assert (r.from_nick, r.to_nick) == ("J5a", "J5b")
    assert r.body == "sw0reloffer 0 1 2 3 0.1!tbond AAAA pk sig"
    assert r.command == "sw0reloffer"
    assert public_line("J5a", "orderbook") == "J5a!PUBLIC!orderbook"


@pytest.mark.parametrize("line", ["", "J5a", "J5a!J5b", "!J5b!x", "J5a!!x", "J5a!J5b!"])
def test_bad_routed_lines(line: str) -> None:
    with pytest.raises(MalformedLineError):
        split_routed(line)


def test_signed_private_message_verifies() -> None:
    alice, bob = identity(1), identity(2)
    line = private_line(alice, bob.nick, "fill", "0 100000 pubkey commitment")
    routed = split_routed(line)
    signed = verify_private(routed)
    assert signed.command == "fill"
    assert signed.data == "0 100000 pubkey commitment"
    assert signed.pubkey_hex == alice.pubkey_hex


def test_spoofed_sender_is_rejected() -> None:
    alice, bob, mallory = identity(1), identity(2), identity(9)
    line = private_line(mallory, bob.nick, "fill", "0 1")
    spoofed = alice.nick + line[len(mallory.nick) :]
    with pytest.raises(BadSignatureError):
        verify_private(split_routed(spoofed))


def test_tampered_private_message_is_rejected() -> None:
    alice, bob = identity(1), identity(2)
    line = private_line(alice, bob.nick, "tx", "AAAA")
    with pytest.raises(BadSignatureError):
        verify_private(split_routed(line.replace("tx AAAA", "tx AAAB")))


def test_unsigned_private_message_is_malformed() -> None:
    with pytest.raises(MalformedLineError):
        verify_private(split_routed("J5a!J5b!orderbook"))


nick_st = st.integers(1, 200).map(lambda n: identity(n).nick)
feature_st = st.frozensets(
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12), max_size=4
)
entry_st = st.builds(
    PeerEntry,
    nick=nick_st,
    location=st.sampled_from(["NOT-SERVING-ONION", "127.0.0.1:5222", "a" * 56 + ".onion:5222"]),
    disconnected=st.booleans(),
    features=feature_st,
)


@given(st.lists(entry_st, max_size=30), st.integers(60, 2000))
def test_peerlist_round_trip_in_chunks(entries, chunk) -> None:
    lines = encode_peerlist(entries, chunk_chars=chunk)
    parsed = [e for line in lines for e in parse_peerlist(line)]
    assert parsed == entries
    for line in lines:
        # a chunk only exceeds the size when one entry alone is bigger
        assert len(line) <= chunk or "," not in line


def test_peerlist_without_features_is_reference_format() -> None:
    entry = PeerEntry(identity(1).nick, "127.0.0.1:1", True, frozenset({"ping"}))
    assert entry.encode(with_features=False) == f"{identity(1).nick};127.0.0.1:1;D"


@pytest.mark.parametrize(
    "line",
    [
        "J5bad;loc",
        "{nick}",
        "{nick};",
        "{nick};loc;X",
        "{nick};loc;D;D",
        "{nick};lo c",
        "{nick};loc;F:a b",
        "{nick};loc;D;F:a;extra",
    ],
)
def test_bad_peerlist_entries(line: str) -> None:
    with pytest.raises(MalformedLineError):
        parse_peerlist(line.format(nick=identity(1).nick))
