"""JMP-0005 payloads in exactly joinmarket-ng 0.37's shapes (issue 8 section 1).

joinmarket-ng is not on PyPI, so there is no running it here: these tests are
the proof of the wire shapes. Each feeds or compares whole lines as they
appear on the wire; the strictness cases are the ones its payload models
reject (extra fields, duplicate keys, NaN/Infinity, wrong types).
"""

from __future__ import annotations

import base64
import json

import pytest

from peerpool.errors import MalformedLineError, NickAuthError
from peerpool.joinmarket.messages import ClientHandshake
from peerpool.joinmarket.nickauth import (
    NickAuthChallenge,
    NickAuthProof,
    NickAuthResult,
    is_strict_der,
    signed_transcript,
)
from peerpool.joinmarket.wire import decode_frame, encode_frame
from tests.joinmarket.helpers import identity

HEX = "3f" * 32
ONION = "a" * 56 + ".onion:5222"


def test_challenge_is_exactly_two_fields() -> None:
    line = NickAuthChallenge(HEX, ONION).to_line()
    assert line == '{"challenge":"' + HEX + '","directory-id":"' + ONION + '"}'
    # the frame as it crosses the wire, and back
    frame = encode_frame(803, line)
    assert frame == (
        b'{"type": 803, "line": "{\\"challenge\\":\\"' + HEX.encode() + b'\\",'
        b'\\"directory-id\\":\\"' + ONION.encode() + b'\\"}"}\r\n'
    )
    assert NickAuthChallenge.from_line(decode_frame(frame[:-2]).line) == NickAuthChallenge(
        HEX, ONION
    )


def test_proof_is_exactly_pubkey_and_canonical_der_signature() -> None:
    alice = identity(1)
    hs_line = ClientHandshake(alice.nick, "regtest").to_line()
    challenge = NickAuthChallenge(HEX, ONION)
    proof = NickAuthProof.create(alice, challenge, hs_line)
    obj = json.loads(proof.to_line())
    assert list(obj) == ["pubkey", "signature"]
    assert obj["pubkey"] == alice.pubkey_hex and obj["pubkey"] == obj["pubkey"].lower()
    raw = base64.b64decode(obj["signature"], validate=True)
    assert base64.b64encode(raw).decode() == obj["signature"] and is_strict_der(raw)
    NickAuthProof.from_line(proof.to_line()).verify(challenge, hs_line, alice.nick)


def test_result_is_exactly_code_and_verified() -> None:
    assert NickAuthResult("ok", True).to_line() == '{"code":"ok","verified":true}'
    for code in ("malformed", "expired", "invalid", "policy"):
        line = f'{{"code":"{code}","verified":false}}'
        assert NickAuthResult(code, False).to_line() == line
        assert NickAuthResult.from_line(line) == NickAuthResult(code, False)


def test_transcript_format() -> None:
    t = signed_transcript("aa" * 32, "d:1", "bb" * 32, "J5n", "02" + "cc" * 32)
    assert t == f"nick-auth|{'aa' * 32}|d:1|{'bb' * 32}|J5n|02{'cc' * 32}nick-auth-v1"


def test_proof_binds_challenge_directory_handshake_and_nick() -> None:
    alice, mallory = identity(1), identity(9)
    challenge = NickAuthChallenge.fresh("dir-a:5222")
    hs_line = ClientHandshake(alice.nick, "regtest").to_line()
    proof = NickAuthProof.create(alice, challenge, hs_line)
    proof.verify(challenge, hs_line, alice.nick)
    with pytest.raises(NickAuthError):
        proof.verify(NickAuthChallenge(challenge.challenge, "dir-b:5222"), hs_line, alice.nick)
    with pytest.raises(NickAuthError):
        proof.verify(NickAuthChallenge.fresh("dir-a:5222"), hs_line, alice.nick)
    with pytest.raises(NickAuthError):
        proof.verify(challenge, hs_line.replace("regtest", "signet"), alice.nick)
    with pytest.raises(NickAuthError):
        proof.verify(challenge, hs_line, mallory.nick)  # the key is not mallory's
    with pytest.raises(MalformedLineError):
        proof.verify(challenge, "{\ud800}", alice.nick)  # unhashable handshake


def _proof_fields() -> tuple[str, str]:
    alice = identity(1)
    proof = NickAuthProof.create(alice, NickAuthChallenge(HEX, ONION), "{}")
    return proof.pubkey_hex, proof.signature


PK, SIG = _proof_fields()
GOOD = {
    NickAuthChallenge: f'{{"challenge":"{HEX}","directory-id":"{ONION}"}}',
    NickAuthProof: f'{{"pubkey":"{PK}","signature":"{SIG}"}}',
    NickAuthResult: '{"code":"ok","verified":true}',
}
BAD = {
    NickAuthChallenge: [
        f'{{"challenge":"{HEX}","directory-id":"{ONION}","kind":"challenge"}}',  # extra field
        f'{{"challenge":"{HEX}","challenge":"{HEX}","directory-id":"{ONION}"}}',  # duplicate
        f'{{"challenge":"{HEX.upper()}","directory-id":"{ONION}"}}',  # not lowercase
        f'{{"challenge":"{HEX[:-2]}","directory-id":"{ONION}"}}',  # 62 hex
        f'{{"challenge":1,"directory-id":"{ONION}"}}',  # wrong type
        f'{{"challenge":"{HEX}","directory-id":NaN}}',
        f'{{"challenge":"{HEX}"}}',  # missing field
        f'{{"challenge":"{HEX}","directory-id":"UPPER:1"}}',
        "[" * 50_000,
        "[]",
    ],
    NickAuthProof: [
        f'{{"pubkey":"{PK}","signature":"{SIG}","challenge":"{HEX}"}}',  # old echoed field
        f'{{"pubkey":"{PK}","signature":"{SIG}","kind":"proof"}}',
        f'{{"pubkey":"{PK}","pubkey":"{PK}","signature":"{SIG}"}}',
        f'{{"pubkey":"{PK.upper()}","signature":"{SIG}"}}',
        f'{{"pubkey":"04{PK[2:]}","signature":"{SIG}"}}',  # not compressed
        f'{{"pubkey":"{PK}","signature":"{SIG.rstrip("=")}"}}',  # padding gone
        f'{{"pubkey":"{PK}","signature":"{base64.b64encode(b"not der").decode()}"}}',
        f'{{"pubkey":"{PK}","signature":Infinity}}',
        f'{{"pubkey":"{PK}","signature":["{SIG}"]}}',
        f'{{"pubkey":"{PK}"}}',
        '{"pubkey":' + "[" * 50_000,
    ],
    NickAuthResult: [
        '{"code":"ok","verified":false}',
        '{"code":"invalid","verified":true}',
        '{"code":"nope","verified":false}',
        '{"code":"ok","verified":1}',
        '{"code":"ok","verified":true,"reason":"x"}',
        '{"code":"ok","code":"ok","verified":true}',
        '{"code":"ok"}',
        '{"code":"ok","verified":NaN}',
    ],
}


@pytest.mark.parametrize("kind", list(GOOD))
def test_good_lines_parse(kind) -> None:
    kind.from_line(GOOD[kind])


@pytest.mark.parametrize(
    ("kind", "line"), [(kind, line) for kind, lines in BAD.items() for line in lines]
)
def test_strictly_malformed(kind, line: str) -> None:
    with pytest.raises(MalformedLineError):
        kind.from_line(line)


def test_strict_der_rules() -> None:
    raw = base64.b64decode(SIG)
    assert is_strict_der(raw)
    len_r = raw[3]
    padded_r = raw[:1] + bytes([raw[1] + 1]) + raw[2:3] + bytes([len_r + 1]) + b"\0" + raw[4:]
    if raw[4] & 0x80 == 0:  # a zero byte in front of a positive R is padding
        assert not is_strict_der(padded_r)
    negative = bytearray(raw)
    negative[4] |= 0x80
    assert not is_strict_der(bytes(negative))
    assert not is_strict_der(raw[:-1])
    assert not is_strict_der(raw + b"\x01")  # a sighash byte does not belong here
    # a non-canonical Base64 of the same bytes: the last character's unused bits set
    text = SIG
    if text.endswith("="):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        stem = text.rstrip("=")
        tweaked = stem[:-1] + alphabet[alphabet.index(stem[-1]) | 1] + text[len(stem) :]
        if tweaked != text:
            assert base64.b64decode(tweaked) == raw
            with pytest.raises(MalformedLineError):
                NickAuthProof.from_line(f'{{"pubkey":"{PK}","signature":"{tweaked}"}}')


def _authenticating_client():
    from peerpool.joinmarket.messages import DirectoryHandshake
    from peerpool.joinmarket.protocol import DirectoryClientProtocol, NickAuthMode, State

    proto = DirectoryClientProtocol(
        identity(1), "regtest", nick_auth=NickAuthMode.REQUIRE, directory_id=ONION
    )
    proto.start()
    hello = proto.data_to_send()
    answer = DirectoryHandshake(identity(100).nick, "regtest", True, "", frozenset({"nick_auth"}))
    proto.receive_data(encode_frame(795, answer.to_line()))
    assert proto.state is State.AUTHENTICATING
    return proto, decode_frame(hello[:-2]).line


def test_client_answers_a_joinmarket_ng_challenge_exactly() -> None:
    from peerpool.joinmarket.protocol import HandshakeDone, State

    proto, hs_line = _authenticating_client()
    wire = b'{"type": 803, "line": "{\\"challenge\\": \\"' + HEX.encode() + b'\\", '
    wire += b'\\"directory-id\\": \\"' + ONION.encode() + b'\\"}"}\r\n'
    proto.receive_data(wire)
    (frame,) = [decode_frame(x) for x in proto.data_to_send().split(b"\r\n") if x]
    assert frame.type == 805
    proof = json.loads(frame.line)
    assert list(proof) == ["pubkey", "signature"]
    NickAuthProof(proof["pubkey"], proof["signature"]).verify(
        NickAuthChallenge(HEX, ONION), hs_line, identity(1).nick
    )
    proto.receive_data(b'{"type": 807, "line": "{\\"code\\": \\"ok\\", \\"verified\\": true}"}\r\n')
    assert proto.state is State.READY and proto.nick_verified
    assert any(isinstance(e, HandshakeDone) for e in proto.events_received())
    # a nick-auth message now is out of order: the directory is cut
    with pytest.raises(NickAuthError, match="out of order"):
        proto.receive_data(encode_frame(803, NickAuthChallenge(HEX, ONION).to_line()))


@pytest.mark.parametrize(
    "line",
    [
        f'{{"challenge":"{HEX}","directory-id":"{ONION}","kind":"challenge"}}',
        '{"challenge": NaN}',
    ],
)
def test_client_refuses_a_malformed_challenge(line: str) -> None:
    proto, _ = _authenticating_client()
    with pytest.raises(MalformedLineError):
        proto.receive_data(encode_frame(803, line))


def test_client_refuses_a_result_before_any_challenge() -> None:
    proto, _ = _authenticating_client()
    with pytest.raises(NickAuthError, match="out of order"):
        proto.receive_data(encode_frame(807, '{"code":"ok","verified":true}'))
