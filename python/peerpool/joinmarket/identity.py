"""JoinMarket nick identities: a secp256k1 key, the nick derived from it, signatures.

The nick is ``"J" + version + base58(sha256(hex(compressed pubkey))[:10])``,
right-padded with ``"O"`` (not a base58 letter, so padding is unambiguous) to
16 characters. Signatures are ECDSA over the Bitcoin signed-message hash,
DER-encoded, then base64: what jmdaemon and joinmarket-ng send. The curve work
is libsecp256k1 through coincurve; nothing here is hand-written cryptography.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from functools import lru_cache

from coincurve import PrivateKey, PublicKey

from peerpool.encoding import compact_size, sha256d
from peerpool.errors import BadSignatureError

JM_VERSION = 5
NICK_HASH_LENGTH = 10  # bytes of the pubkey hash kept (jmdaemon NICK_HASH_LENGTH)
NICK_MAX_ENCODED = 14  # base58 characters after "J5" (jmdaemon NICK_MAX_ENCODED)
NICK_RE = re.compile(r"J[0-9][1-9A-HJ-NP-Za-km-zO]{14}")
# The reference's fixed hostid for every onion message channel (jmdaemon/onionmc.py):
# appended to signed data so a signature cannot be replayed on another channel kind.
ONION_HOSTID = "onion-network"

_HEX = re.compile(r"[0-9a-fA-F]+")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BITCOIN_MESSAGE_MAGIC = b"\x18Bitcoin Signed Message:\n"
# DER ECDSA signatures on secp256k1 are at most 72 bytes (96 base64 characters)
MAX_SIGNATURE_B64 = 96


def b58encode(data: bytes) -> str:
    """Base58 without checksum (leading zero bytes become leading '1's)."""
    num = int.from_bytes(data, "big")
    digits = []
    while num:
        num, rem = divmod(num, 58)
        digits.append(_B58[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def bitcoin_message_hash(message: bytes) -> bytes:
    """sha256d(magic || CompactSize(len) || message), Bitcoin's signed-message hash."""
    return sha256d(_BITCOIN_MESSAGE_MAGIC + compact_size(len(message)) + message)


def is_valid_nick(nick: str) -> bool:
    return NICK_RE.fullmatch(nick) is not None


@lru_cache(maxsize=4096)  # bounded: the same makers sign message after message
def nick_from_pubkey_hex(pubkey_hex: str, version: int = JM_VERSION) -> str:
    """The nick a compressed public key (lower-case hex) stands for."""
    digest = hashlib.sha256(pubkey_hex.encode("ascii")).digest()[:NICK_HASH_LENGTH]
    encoded = b58encode(digest)
    return f"J{version}{encoded}{'O' * (NICK_MAX_ENCODED - len(encoded))}"


@lru_cache(maxsize=4096)
def _public_key(pubkey_hex: str) -> PublicKey:
    return PublicKey(bytes.fromhex(pubkey_hex))


def _to_bytes(message: str | bytes) -> bytes:
    if isinstance(message, bytes):
        return message
    try:
        return message.encode("utf-8")
    except UnicodeEncodeError:
        # JSON can carry a lone surrogate (\\ud800) that no UTF-8 signer could have signed
        raise BadSignatureError("signed text is not valid Unicode (lone surrogate)") from None


def verify_message(message: str | bytes, signature_b64: str, pubkey_hex: str) -> bool:
    """True when ``signature_b64`` signs ``message`` (signed-message hash) for the key."""
    if len(signature_b64) > MAX_SIGNATURE_B64 or len(pubkey_hex) != 66:
        return False
    try:
        data = _to_bytes(message)
    except BadSignatureError:
        return False
    if len(data) > MAX_CACHED_MESSAGE:
        return _verify_uncached(data, signature_b64, pubkey_hex)
    return _verify_cached(data, signature_b64, pubkey_hex)


def _verify_uncached(message: bytes, signature_b64: str, pubkey_hex: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key = _public_key(pubkey_hex)
        return bool(key.verify(signature, bitcoin_message_hash(message), hasher=None))
    except (ValueError, TypeError, binascii.Error):
        # coincurve raises ValueError for unparsable keys and DER
        return False


# A taker on several directories gets the same signed line once per directory;
# the copies after the first cost a dictionary lookup instead of an ECDSA check.
# Bounded: 8,192 entries of at most 4 KiB (offers and commands are far smaller).
MAX_CACHED_MESSAGE = 4096
_verify_cached = lru_cache(maxsize=8192)(_verify_uncached)


def verify_nick_signature(
    nick: str, message: str | bytes, pubkey_hex: str, signature_b64: str
) -> None:
    """Check that ``pubkey_hex`` is ``nick``'s key and signs ``message``.

    Raises :class:`BadSignatureError` with the reason otherwise.
    """
    if not is_valid_nick(nick):
        raise BadSignatureError(f"not a JoinMarket nick: {nick[:32]!r}")
    if (
        len(pubkey_hex) != 66
        or pubkey_hex[:2] not in ("02", "03")
        or not _HEX.fullmatch(pubkey_hex)
    ):
        raise BadSignatureError("public key is not 33-byte compressed hex")
    if nick_from_pubkey_hex(pubkey_hex.lower(), int(nick[1])) != nick:
        raise BadSignatureError(f"public key does not belong to nick {nick}")
    if not verify_message(message, signature_b64, pubkey_hex):
        raise BadSignatureError(f"signature from {nick} does not verify")


class NickIdentity:
    """A nick and the key that proves it."""

    __slots__ = ("_key", "nick", "pubkey_hex", "version")

    def __init__(self, private_key: bytes | None = None, version: int = JM_VERSION) -> None:
        if not 0 <= version <= 9:
            raise ValueError("nick version is one digit")
        self._key = PrivateKey(private_key if private_key is not None else secrets.token_bytes(32))
        self.version = version
        self.pubkey_hex = self._key.public_key.format(compressed=True).hex()
        self.nick = nick_from_pubkey_hex(self.pubkey_hex, version)

    def sign(self, message: str | bytes) -> str:
        """Base64 DER signature over the Bitcoin signed-message hash of ``message``."""
        signature = self._key.sign(bitcoin_message_hash(_to_bytes(message)), hasher=None)
        return base64.b64encode(signature).decode("ascii")

    def __repr__(self) -> str:  # never show the key
        return f"NickIdentity({self.nick})"
