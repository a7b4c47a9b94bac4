"""Mutated wire lines against every JoinMarket parser, the server core and the
client core: the only exceptions allowed are PeerpoolError subclasses (issue 9.3).

A seeded mutator over real lines (handshakes, nick-auth payloads, relayed
messages, peerlists, offers), with the mutations that found the bugs of issue
9: deep nesting, lone surrogates, non-ASCII digits, 5,000-digit numbers, JSON
constants, duplicated keys, swapped types. Short in `make test` (about 3,000
lines per target), 100,000 lines with ``PEERPOOL_SOAK=1``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from peerpool.errors import PeerpoolError
from peerpool.joinmarket.messages import (
    ClientHandshake,
    DirectoryHandshake,
    private_line,
    public_line,
    split_routed,
    verify_private,
)
from peerpool.joinmarket.nickauth import NickAuthChallenge, NickAuthProof, NickAuthResult
from peerpool.joinmarket.offers import offers_in, split_commands
from peerpool.joinmarket.peerlist import PeerEntry, encode_peerlist, parse_peerlist
from peerpool.joinmarket.protocol import DirectoryClientProtocol, NickAuthMode, State
from peerpool.joinmarket.server_core import DirectoryCore
from peerpool.joinmarket.server_state import PeerState, ServerConfig, valid_location
from peerpool.joinmarket.wire import MessageType, decode_frame, encode_frame
from tests.joinmarket.helpers import FakeWriter, identity
from tests.joinmarket.soak import size

ALICE, BOB, DIRECTORY = identity(1), identity(2), identity(100)
DIRECTORY_ID = "127.0.0.1:5222"
OFFER = "sw0reloffer 0 27300 4000000 0 0.0002"


def _corpus() -> list[tuple[int, str]]:
    hs = ClientHandshake(ALICE.nick, "regtest", "abc.onion:5222", frozenset({"nick_auth", "ping"}))
    dn = DirectoryHandshake(DIRECTORY.nick, "regtest", True, "motd", frozenset({"nick_auth"}))
    challenge = NickAuthChallenge.fresh(DIRECTORY_ID)
    proof = NickAuthProof.create(ALICE, challenge, hs.to_line())
    peers = [
        PeerEntry(identity(n).nick, f"h{n}.onion:5222", n % 3 == 0, frozenset({"ping"}))
        for n in range(1, 6)
    ]
    return [
        (MessageType.HANDSHAKE, hs.to_line()),
        (MessageType.DN_HANDSHAKE, dn.to_line()),
        (MessageType.NICK_AUTH_CHALLENGE, challenge.to_line()),
        (MessageType.NICK_AUTH_PROOF, proof.to_line()),
        (MessageType.NICK_AUTH_RESULT, NickAuthResult("ok", True).to_line()),
        (MessageType.PRIVMSG, private_line(BOB, ALICE.nick, "fill", "0 100000 abc")),
        (
            MessageType.PRIVMSG,
            private_line(BOB, ALICE.nick, OFFER.split(" ", 1)[0], OFFER.split(" ", 1)[1]),
        ),
        (MessageType.PUBMSG, public_line(ALICE.nick, "orderbook")),
        (MessageType.PUBMSG, public_line(BOB.nick, OFFER)),
        (MessageType.PEERLIST, encode_peerlist(peers)[0]),
        (MessageType.GETPEERLIST, ""),
        (MessageType.PING, ""),
    ]


CORPUS = _corpus()
# fragments that broke parsers before (issue 9.3) or are JSON's odd corners
NASTY = [
    "[" * 50_000,
    "{" * 3_000,
    "\ud800",
    "\udfff",
    "²",
    "٣",
    "9" * 5_000,
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999999",
    "null",
    "true",
    '"',
    "\\",
    ":",
    ";",
    ",",
    "!",
    " ",
    "+",
    "\x00",
    "\u2028",
    "",
]


class Mutator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def text(self, line: str) -> str:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            pick = rng.random()
            pos = rng.randint(0, len(line))
            if pick < 0.3:
                line = line[:pos] + rng.choice(NASTY) + line[pos:]
            elif pick < 0.45 and line:
                end = min(len(line), pos + rng.randint(1, 20))
                line = line[:pos] + line[end:]
            elif pick < 0.6:
                line = line[:pos] + rng.choice(NASTY) + line[pos + rng.randint(0, 8) :]
            elif pick < 0.7 and line:
                line = line[:pos] + line[pos : pos + 30] * rng.randint(2, 40) + line[pos:]
            elif pick < 0.8:
                line = self._json_swap(line)
            elif pick < 0.9:
                line = rng.choice(NASTY) + line
            else:
                chars = list(line)
                for _ in range(rng.randint(1, 5)):
                    if chars:
                        chars[rng.randrange(len(chars))] = chr(rng.randint(0, 0x10FFFF))
                line = "".join(chars)
        return line

    def _json_swap(self, line: str) -> str:
        """Replace one value of a JSON object by another type, or duplicate a key."""
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return line
        if type(obj) is not dict or not obj:
            return line
        key = self.rng.choice(sorted(obj))
        value = self.rng.choice([None, 1, 1.5, True, [], {}, "x", "9" * 5000, -1, obj[key]])
        if self.rng.random() < 0.3:
            body = json.dumps(obj)[1:-1]
            return "{" + body + ", " + json.dumps(key) + ": " + json.dumps(value) + "}"
        obj[key] = value
        if self.rng.random() < 0.2:
            obj["extra"] = "field"
        return json.dumps(obj)

    def frame(self) -> bytes:
        msg_type, line = self.rng.choice(CORPUS)
        if self.rng.random() < 0.15:
            raw = json.dumps({"type": msg_type, "line": line})
            return self.text(raw).encode("utf-8", "surrogatepass") + b"\n"
        if self.rng.random() < 0.05:
            msg_type = self.rng.choice([0, -1, 2**70, 797, 9999])
        return json.dumps({"type": msg_type, "line": self.text(line)}).encode("ascii") + b"\r\n"


PARSERS: list[Callable[[str], object]] = [
    ClientHandshake.from_line,
    DirectoryHandshake.from_line,
    NickAuthChallenge.from_line,
    NickAuthProof.from_line,
    NickAuthResult.from_line,
    parse_peerlist,
    lambda line: verify_private(split_routed(line)),
    lambda line: offers_in(BOB.nick, split_commands(line)),
    lambda line: valid_location(line) in (True, False) or 1 / 0,
]


def _typed_only(what: str, call: Callable[..., object], *args: object) -> None:
    try:
        call(*args)
    except PeerpoolError:
        pass
    except Exception as exc:  # the point of the test: report which input did it
        raise AssertionError(
            f"{what}: {type(exc).__name__}: {exc!s:.100} on {args!r:.200}"
        ) from exc


@pytest.mark.soak
def test_fuzz_parsers() -> None:
    mutator = Mutator(1)
    for _ in range(size(3_000, 100_000)):
        _, line = mutator.rng.choice(CORPUS)
        mutated = mutator.text(line)
        for parse in PARSERS:
            _typed_only(getattr(parse, "__qualname__", "?"), parse, mutated)
        raw = mutator.frame()
        _typed_only("decode_frame", decode_frame, raw.rstrip(b"\r\n"))


def _server_conns(core: DirectoryCore) -> list:
    """A handshaking, an authenticating and a ready connection (fresh each time)."""
    conns = []
    for n, features in ((11, frozenset()), (12, frozenset({"nick_auth"})), (13, frozenset())):
        writer = FakeWriter()
        conn = core.open(writer)
        assert conn is not None
        if n != 11:
            hs = ClientHandshake(identity(n).nick, "regtest", features=features)
            core.feed(conn, encode_frame(MessageType.HANDSHAKE, hs.to_line()))
        conns.append(conn)
    assert [c.state for c in conns] == [
        PeerState.HANDSHAKE,
        PeerState.AUTHENTICATING,
        PeerState.READY,
    ]
    return conns


@pytest.mark.soak
def test_fuzz_server_core() -> None:
    mutator = Mutator(2)
    core = DirectoryCore(ServerConfig("regtest", directory_id=DIRECTORY_ID), DIRECTORY)
    conns = _server_conns(core)
    bad_before = core.stats.closed_bad_input
    for i in range(size(3_000, 100_000)):
        if any(c.state is PeerState.CLOSED for c in conns):
            for c in conns:
                core.lost(c)
            conns = _server_conns(core)
        conn = conns[i % 3]
        raw = mutator.frame()
        _typed_only(f"server core ({conn.state.name})", core.feed, conn, raw)
    _typed_only("tick", core.tick)
    assert core.stats.closed_bad_input > bad_before  # the mutations did reach the checks


def _client(state: State) -> DirectoryClientProtocol:
    proto = DirectoryClientProtocol(
        ALICE, "regtest", nick_auth=NickAuthMode.PREFER, directory_id=DIRECTORY_ID
    )
    proto.start()
    proto.data_to_send()
    if state is not State.HANDSHAKING:
        features = frozenset({"nick_auth"}) if state is State.AUTHENTICATING else frozenset()
        answer = DirectoryHandshake(DIRECTORY.nick, "regtest", True, "", features)
        proto.receive_data(encode_frame(MessageType.DN_HANDSHAKE, answer.to_line()))
    assert proto.state is state
    return proto


@pytest.mark.soak
def test_fuzz_client_core() -> None:
    mutator = Mutator(3)
    states = [State.HANDSHAKING, State.AUTHENTICATING, State.READY]
    clients = {s: _client(s) for s in states}
    unexpected = dropped = 0
    for i in range(size(3_000, 100_000)):
        state = states[i % 3]
        proto = clients[state]
        raw = mutator.frame()
        try:
            proto.receive_data(raw)
        except PeerpoolError:
            proto = clients[state] = _client(state)  # fatal from a directory: start anew
        except Exception as exc:  # report which input did it
            raise AssertionError(
                f"client core ({state.name}): {type(exc).__name__}: {exc!s:.100} on {raw!r:.200}"
            ) from exc
        if proto.state is not state:
            proto = clients[state] = _client(state)
        unexpected += proto.dropped_unexpected
        dropped += proto.dropped
        proto.dropped = proto.dropped_unexpected = 0
        proto.events_received()
        proto.data_to_send()
    assert unexpected == 0
    assert dropped > 0
