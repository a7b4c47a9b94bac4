"""JMP-0005 nick authentication: a directory challenges a peer to prove its nick.

Both sides advertise the ``nick_auth`` feature in their handshakes. After the
795 answer the directory sends 803 ``{"kind": "challenge", "challenge": hex32,
"directory-id": id}``; the peer answers 805 with its public key and a
signature over the Bitcoin signed-message hash of
``nick-auth|challenge|directory-id|sha256(handshake line)|nick|pubkey`` followed
by ``nick-auth-v1``; the directory answers 807 ``{"code", "verified"}``. Binding
the exact handshake line and the directory id stops a proof from being replayed
to another directory or with another handshake.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from peerpool.errors import BadSignatureError, InputError, MalformedLineError, NickAuthError
from peerpool.joinmarket.identity import NickIdentity, verify_nick_signature
from peerpool.joinmarket.messages import _json_object

NICK_AUTH_DOMAIN = "nick-auth-v1"
RESULT_CODES = frozenset({"ok", "malformed", "expired", "invalid", "policy"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIRECTORY_ID = re.compile(r"[a-z0-9][a-z0-9.:_-]{0,254}")


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
    return hashlib.sha256(handshake_line.encode("utf-8")).hexdigest()


def signed_transcript(
    challenge: str, directory_id: str, handshake_hash: str, nick: str, pubkey_hex: str
) -> str:
    return f"nick-auth|{challenge}|{directory_id}|{handshake_hash}|{nick}|{pubkey_hex}{NICK_AUTH_DOMAIN}"


@dataclass(frozen=True)
class NickAuthChallenge:
    challenge: str
    directory_id: str

    @classmethod
    def fresh(cls, directory_id: str) -> NickAuthChallenge:
        return cls(secrets.token_hex(32), validate_directory_id(directory_id))

    def to_line(self) -> str:
        return json.dumps(
            {"kind": "challenge", "challenge": self.challenge, "directory-id": self.directory_id},
            separators=(",", ":"),
        )

    @classmethod
    def from_line(cls, line: str) -> NickAuthChallenge:
        obj = _json_object(line, "nick-auth challenge")
        if obj.get("kind", "challenge") != "challenge":
            raise MalformedLineError("nick-auth challenge: wrong 'kind'")
        return cls(
            _str(obj, "challenge", "nick-auth challenge", _HEX64),
            _str(obj, "directory-id", "nick-auth challenge", _DIRECTORY_ID),
        )


@dataclass(frozen=True)
class NickAuthProof:
    challenge: str
    handshake_hash: str
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
        return cls(challenge.challenge, digest, identity.pubkey_hex, identity.sign(transcript))

    def to_line(self) -> str:
        return json.dumps(
            {
                "kind": "proof",
                "challenge": self.challenge,
                "handshake-sha256": self.handshake_hash,
                "pubkey": self.pubkey_hex,
                "signature": self.signature,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_line(cls, line: str) -> NickAuthProof:
        what = "nick-auth proof"
        obj = _json_object(line, what)
        # challenge and handshake hash are echoed by joinmarket-ng; the verifier
        # recomputes both, so when they are absent the signature still binds them
        challenge = obj.get("challenge", "")
        digest = obj.get("handshake-sha256", "")
        if type(challenge) is not str or type(digest) is not str:
            raise MalformedLineError(f"{what}: echoed fields are not strings")
        return cls(challenge, digest, _str(obj, "pubkey", what), _str(obj, "signature", what))

    def verify(self, challenge: NickAuthChallenge, handshake_line: str, nick: str) -> None:
        """Raise :class:`NickAuthError` unless this proves ``nick`` for ``challenge``."""
        digest = handshake_sha256(handshake_line)
        if self.challenge and self.challenge != challenge.challenge:
            raise NickAuthError("proof answers another challenge")
        if self.handshake_hash and self.handshake_hash != digest:
            raise NickAuthError("proof is bound to another handshake")
        transcript = signed_transcript(
            challenge.challenge, challenge.directory_id, digest, nick, self.pubkey_hex
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
        obj = _json_object(line, "nick-auth result")
        code = _str(obj, "code", "nick-auth result")
        verified = obj.get("verified")
        if code not in RESULT_CODES or type(verified) is not bool or verified != (code == "ok"):
            raise MalformedLineError("nick-auth result: inconsistent code/verified")
        return cls(code, verified)
