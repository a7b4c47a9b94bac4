"""JMP-0005 nick authentication: a directory challenges a peer to prove its nick.

Both sides advertise the ``nick_auth`` feature in their handshakes. After the
795 answer the directory sends 803 ``{"challenge": <64 hex>, "directory-id":
<id>}``; the peer answers 805 ``{"pubkey": <66 hex>, "signature": <base64 DER>}``
signing the Bitcoin signed-message hash of
``nick-auth|challenge|directory-id|sha256(handshake line)|nick|pubkey`` followed
by ``nick-auth-v1``; the directory answers 807 ``{"code", "verified"}``. Binding
the exact handshake line and the directory id stops a proof from being replayed
to another directory or with another handshake.

The three payloads have exactly these fields, as joinmarket-ng 0.37 sends and
demands them (its models forbid extra fields and parse strictly): anything else,
duplicate keys, NaN or Infinity included, is ``malformed``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from peerpool.errors import BadSignatureError, InputError, MalformedLineError, NickAuthError
from peerpool.joinmarket.identity import MAX_SIGNATURE_B64, NickIdentity, verify_nick_signature
from peerpool.joinmarket.wire import strict_json_object

NICK_AUTH_DOMAIN = "nick-auth-v1"
RESULT_CODES = frozenset({"ok", "malformed", "expired", "invalid", "policy"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIRECTORY_ID = re.compile(r"[a-z0-9][a-z0-9.:_-]{0,254}")
_PUBKEY = re.compile(r"0[23][0-9a-f]{64}")  # compressed, lower-case
_CHALLENGE_KEYS = frozenset({"challenge", "directory-id"})
_PROOF_KEYS = frozenset({"pubkey", "signature"})
_RESULT_KEYS = frozenset({"code", "verified"})


def _str(obj: dict[str, Any], key: str, what: str, pattern: re.Pattern[str] | None = None) -> str:
    value = obj.get(key)
    if type(value) is not str or (pattern is not None and pattern.fullmatch(value) is None):
        raise MalformedLineError(f"{what}: {key!r} missing or malformed")
    return value


def validate_directory_id(directory_id: str) -> str:
    if _DIRECTORY_ID.fullmatch(directory_id) is None:
        raise InputError(f"invalid directory-id {directory_id!r} (lower-case host:port style)")
    return directory_id


def handshake_sha256(handshake_line: str) -> str:
    try:
        data = handshake_line.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedLineError("handshake line holds a lone surrogate") from None
    return hashlib.sha256(data).hexdigest()


def signed_transcript(
    challenge: str, directory_id: str, handshake_hash: str, nick: str, pubkey_hex: str
) -> str:
    return f"nick-auth|{challenge}|{directory_id}|{handshake_hash}|{nick}|{pubkey_hex}{NICK_AUTH_DOMAIN}"


def is_strict_der(sig: bytes) -> bool:
    """Whether ``sig`` is a strict DER ECDSA signature (BIP 66's encoding rules,
    without the sighash byte): one SEQUENCE of two minimal, positive INTEGERs."""
    size = len(sig)
    if not 8 <= size <= 72 or sig[0] != 0x30 or sig[1] != size - 2:
        return False
    len_r = sig[3]
    if sig[2] != 0x02 or len_r == 0 or 5 + len_r >= size:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 6 != size or sig[4 + len_r] != 0x02 or len_s == 0:
        return False
    for start, length in ((4, len_r), (6 + len_r, len_s)):
        if sig[start] & 0x80:  # negative
            return False
        if length > 1 and sig[start] == 0 and not sig[start + 1] & 0x80:  # padded
            return False
    return True


def _signature(value: str, what: str) -> str:
    """A canonical Base64 encoding of a strict-DER signature, or malformed."""
    if len(value) > MAX_SIGNATURE_B64:
        raise MalformedLineError(f"{what}: 'signature' too long")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedLineError(f"{what}: 'signature' is not Base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise MalformedLineError(f"{what}: 'signature' is not canonical Base64")
    if not is_strict_der(raw):
        raise MalformedLineError(f"{what}: 'signature' is not strict DER")
    return value


@dataclass(frozen=True)
class NickAuthChallenge:
    challenge: str
    directory_id: str

    @classmethod
    def fresh(cls, directory_id: str) -> NickAuthChallenge:
        return cls(secrets.token_hex(32), validate_directory_id(directory_id))

    def to_line(self) -> str:
        return json.dumps(
            {"challenge": self.challenge, "directory-id": self.directory_id},
            separators=(",", ":"),
        )

    @classmethod
    def from_line(cls, line: str) -> NickAuthChallenge:
        what = "nick-auth challenge"
        obj = strict_json_object(line, what, _CHALLENGE_KEYS)
        return cls(
            _str(obj, "challenge", what, _HEX64),
            _str(obj, "directory-id", what, _DIRECTORY_ID),
        )


@dataclass(frozen=True)
class NickAuthProof:
    pubkey_hex: str
    signature: str

    @classmethod
    def create(
        cls, identity: NickIdentity, challenge: NickAuthChallenge, handshake_line: str
    ) -> NickAuthProof:
        digest = handshake_sha256(handshake_line)
        transcript = signed_transcript(
            challenge.challenge, challenge.directory_id, digest, identity.nick, identity.pubkey_hex
        )
        return cls(identity.pubkey_hex, identity.sign(transcript))

    def to_line(self) -> str:
        return json.dumps(
            {"pubkey": self.pubkey_hex, "signature": self.signature}, separators=(",", ":")
        )

    @classmethod
    def from_line(cls, line: str) -> NickAuthProof:
        what = "nick-auth proof"
        obj = strict_json_object(line, what, _PROOF_KEYS)
        pubkey = _str(obj, "pubkey", what, _PUBKEY)
        return cls(pubkey, _signature(_str(obj, "signature", what), what))

    def verify(self, challenge: NickAuthChallenge, handshake_line: str, nick: str) -> None:
        """Raise :class:`NickAuthError` unless this proves ``nick`` for ``challenge``
        (the challenge and the handshake are ours: the proof does not repeat them)."""
        transcript = signed_transcript(
            challenge.challenge,
            challenge.directory_id,
            handshake_sha256(handshake_line),
            nick,
            self.pubkey_hex,
        )
        try:
            verify_nick_signature(nick, transcript, self.pubkey_hex, self.signature)
        except BadSignatureError as exc:
            raise NickAuthError(f"nick-auth proof rejected: {exc}") from None


@dataclass(frozen=True)
class NickAuthResult:
    code: str
    verified: bool

    def to_line(self) -> str:
        return json.dumps({"code": self.code, "verified": self.verified}, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> NickAuthResult:
        what = "nick-auth result"
        obj = strict_json_object(line, what, _RESULT_KEYS)
        code = _str(obj, "code", what)
        verified = obj["verified"]
        if code not in RESULT_CODES or type(verified) is not bool or verified != (code == "ok"):
            raise MalformedLineError(f"{what}: inconsistent code/verified")
        return cls(code, verified)
