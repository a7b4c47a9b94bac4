"""Handshakes and the routed text inside PRIVMSG/PUBMSG envelopes.

Handshake 793 (client to directory) and 795 (directory answer) carry a JSON
object as their ``line``. Routed messages are ``from!to!cmd args``; a private
message ends with `` pubkey_hex signature_b64`` where the signature covers
``args + "onion-network"`` (jmdaemon MessageChannel: the command itself is not
signed). Public messages are ``from!PUBLIC!cmd args`` and are not signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from peerpool.errors import MalformedLineError
from peerpool.joinmarket.identity import (
    JM_VERSION,
    ONION_HOSTID,
    NickIdentity,
    verify_nick_signature,
)

APP_NAME = "joinmarket"
NOT_SERVING_ONION = "NOT-SERVING-ONION"
PUBLIC = "PUBLIC"
COMMAND_PREFIX = "!"
# Features joinmarket-ng advertises (jmcore/protocol.py); the reference ignores them.
FEATURE_NICK_AUTH = "nick_auth"
FEATURE_PEERLIST_FEATURES = "peerlist_features"
FEATURE_PING = "ping"
MAX_FEATURES = 64
MAX_MOTD = 4096


def _json_object(line: str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise MalformedLineError(f"{what} is not JSON") from None
    if type(obj) is not dict:
        raise MalformedLineError(f"{what} is not a JSON object")
    return obj


def _field(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if type(value) is not kind:
        raise MalformedLineError(f"{what}: {key!r} missing or not {kind.__name__}")
    return value


def _features(obj: dict[str, Any], what: str) -> frozenset[str]:
    raw = obj.get("features", {})
    if type(raw) is not dict or len(raw) > MAX_FEATURES:
        raise MalformedLineError(f"{what}: 'features' is not a small object")
    return frozenset(k for k, v in raw.items() if v is True)


@dataclass(frozen=True)
class ClientHandshake:
    """Type 793: what a maker or taker tells a directory about itself."""

    nick: str
    network: str
    location: str = NOT_SERVING_ONION
    features: frozenset[str] = field(default_factory=frozenset)
    proto_ver: int = JM_VERSION
    app_name: str = APP_NAME
    directory: bool = False

    def to_line(self) -> str:
        return json.dumps(
            {
                "app-name": self.app_name,
                "directory": self.directory,
                "location-string": self.location,
                "proto-ver": self.proto_ver,
                "features": dict.fromkeys(sorted(self.features), True),
                "nick": self.nick,
                "network": self.network,
            }
        )

    @classmethod
    def from_line(cls, line: str) -> ClientHandshake:
        what = "handshake"
        obj = _json_object(line, what)
        return cls(
            nick=_field(obj, "nick", str, what),
            network=_field(obj, "network", str, what),
            # joinmarket-ng reads a missing location as not serving one
            location=_field(obj, "location-string", str, what)
            if "location-string" in obj
            else NOT_SERVING_ONION,
            features=_features(obj, what),
            proto_ver=_field(obj, "proto-ver", int, what),
            app_name=_field(obj, "app-name", str, what),
            directory=_field(obj, "directory", bool, what),
        )


@dataclass(frozen=True)
class DirectoryHandshake:
    """Type 795: the directory's answer (``accepted`` false means refused)."""

    nick: str
    network: str
    accepted: bool
    motd: str = ""
    features: frozenset[str] = field(default_factory=frozenset)
    proto_ver_min: int = JM_VERSION
    proto_ver_max: int = JM_VERSION
    app_name: str = APP_NAME
    directory: bool = True

    def to_line(self) -> str:
        return json.dumps(
            {
                "app-name": self.app_name,
                "directory": self.directory,
                "proto-ver-min": self.proto_ver_min,
                "proto-ver-max": self.proto_ver_max,
                "features": dict.fromkeys(sorted(self.features), True),
                "accepted": self.accepted,
                "nick": self.nick,
                "network": self.network,
                "motd": self.motd,
            }
        )

    @classmethod
    def from_line(cls, line: str) -> DirectoryHandshake:
        what = "directory handshake"
        obj = _json_object(line, what)
        motd = obj.get("motd", "")
        if type(motd) is not str:
            raise MalformedLineError(f"{what}: 'motd' is not a string")
        return cls(
            nick=_field(obj, "nick", str, what),
            network=_field(obj, "network", str, what),
            accepted=_field(obj, "accepted", bool, what),
            motd=motd[:MAX_MOTD],
            features=_features(obj, what),
            proto_ver_min=_field(obj, "proto-ver-min", int, what),
            proto_ver_max=_field(obj, "proto-ver-max", int, what),
            app_name=_field(obj, "app-name", str, what),
            directory=_field(obj, "directory", bool, what),
        )


@dataclass(frozen=True, slots=True)
class Routed:
    """``from!to!body`` split once; ``body`` is ``cmd args`` without the leading '!'."""

    from_nick: str
    to_nick: str
    body: str

    @property
    def command(self) -> str:
        return self.body.split(" ", 1)[0]


def split_routed(line: str) -> Routed:
    """Split a PRIVMSG/PUBMSG line. The body may itself contain '!' (several
    commands in one message, e.g. offers followed by ``!tbond``)."""
    parts = line.split(COMMAND_PREFIX, 2)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        raise MalformedLineError("routed message is not 'from!to!cmd ...'")
    return Routed(parts[0], parts[1], parts[2])


def public_line(from_nick: str, cmd: str, args: str = "") -> str:
    return f"{from_nick}{COMMAND_PREFIX}{PUBLIC}{COMMAND_PREFIX}{cmd}{' ' + args if args else ''}"


def private_line(identity: NickIdentity, to_nick: str, cmd: str, data: str) -> str:
    """A signed private message line from ``identity`` to ``to_nick``."""
    signature = identity.sign(data + ONION_HOSTID)
    return (
        f"{identity.nick}{COMMAND_PREFIX}{to_nick}{COMMAND_PREFIX}"
        f"{cmd} {data} {identity.pubkey_hex} {signature}"
    )


@dataclass(frozen=True, slots=True)
class SignedBody:
    """A private message body taken apart: ``cmd data pubkey signature``."""

    command: str
    data: str
    pubkey_hex: str
    signature: str


def split_signed(body: str) -> SignedBody:
    """Take the signature off a private message body (jmdaemon: the last two
    space-separated fields are pubkey and signature; what lies between the
    command and them is the signed data)."""
    tokens = body.split(" ")
    if len(tokens) < 3:
        raise MalformedLineError("private message has no 'pubkey signature' suffix")
    return SignedBody(tokens[0], " ".join(tokens[1:-2]), tokens[-2], tokens[-1])


def verify_private(routed: Routed) -> SignedBody:
    """Check a private message's signature against its ``from`` nick.

    Raises :class:`~peerpool.errors.BadSignatureError` (wrong key or signature)
    or :class:`MalformedLineError` (no signature at all).
    """
    signed = split_signed(routed.body)
    verify_nick_signature(
        routed.from_nick, signed.data + ONION_HOSTID, signed.pubkey_hex, signed.signature
    )
    return signed
