"""Access tokens of the agent networks: JWTs checked with PyJWT, cached per peer.

A token rides in ``Msg.piggyback`` as the JWT followed by one character, the
inspector bit (``"0"`` or ``"1"``). The world signs tokens with RS256 (the Go
world), and we accept EdDSA and ES256 as well; which one is allowed follows
from the type of the public key, so a token cannot pick its own algorithm.
Claims: ``exp`` is required, ``node_id`` names the agent, ``cv_hash`` is
optional, and ``p2p_peers`` lists the peer ids the token may be used from: a
token whose ``p2p_peers`` does not name the sender is rejected, and so is one
without ``p2p_peers`` when a sender is given (as the system being replaced
does).

Verifying RS256 costs about 71 µs (issue 11), and a peer sends many messages
under one token, so :class:`TokenVerifier` keeps, per peer, the last token it
saw and the outcome: the same token again costs a string comparison and an
expiry check. Rejections are cached too (except expiry, which is time-bound),
so a peer repeating a forged token costs nothing either. The cache is bounded
(least recently used out) and :meth:`TokenVerifier.forget` drops a peer when
it leaves.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from peerpool.errors import TokenError

# the rejection reasons a token can get (TokenError.reason)
EXPIRED = "expired"
FORGED = "forged"  # the signature does not verify with the world's key
MISSING_EXP = "missing_exp"
WRONG_PEER = "wrong_peer"  # p2p_peers does not name the sender
UNBOUND = "unbound"  # no p2p_peers claim at all
MALFORMED = "malformed"  # not a JWT, wrong algorithm, claims of the wrong type
NO_TOKEN = "no_token"
NO_VERIFIER = "no_verifier"  # no public key was configured: nothing verifies

DEFAULT_CACHE_SIZE = 16_384


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    node_id: str
    cv_hash: str | None
    exp: float
    claims: dict[str, Any]


PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def load_public_key(key: str | bytes | PublicKey) -> tuple[PublicKey, str]:
    """The key and the one algorithm it verifies (RS256, EdDSA or ES256)."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, bytes):
        try:
            key = load_pem_public_key(key)  # type: ignore[assignment]
        except ValueError as exc:
            raise TokenError(f"public key is not a PEM public key: {exc}", MALFORMED) from None
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key, "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, "ES256"
    raise TokenError(f"unsupported public key type {type(key).__name__}", MALFORMED)


class TokenVerifier:
    """Verifies tokens against one public key, with a per-peer cache."""

    def __init__(
        self,
        public_key: str | bytes | PublicKey,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        leeway: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key, self.algorithm = load_public_key(public_key)
        self._cache_size = max(1, cache_size)
        self._leeway = leeway
        self._clock = clock
        # peer id -> (token, claims or the rejection reason)
        self._cache: OrderedDict[str, tuple[str, TokenClaims | str]] = OrderedDict()
        self.verifications = 0  # full signature checks done (the figure the cache saves)

    def verify(self, token: str, peer_id: str | None = None) -> TokenClaims:
        """Claims of a valid token; TokenError with a reason otherwise."""
        if not token:
            raise TokenError("no token", NO_TOKEN)
        if peer_id is None:
            return self._decode(token, None)
        hit = self._cache.get(peer_id)
        if hit is not None and hit[0] == token:
            self._cache.move_to_end(peer_id)
            outcome = hit[1]
            if isinstance(outcome, str):
                raise TokenError(f"token rejected before: {outcome}", outcome)
            if self._clock() >= outcome.exp + self._leeway:
                del self._cache[peer_id]
                raise TokenError("token expired", EXPIRED)
            return outcome
        try:
            claims = self._decode(token, peer_id)
        except TokenError as exc:
            if exc.reason != EXPIRED:  # an expired token stays expired, but is not cached
                self._store(peer_id, token, exc.reason)
            raise
        self._store(peer_id, token, claims)
        return claims

    def forget(self, peer_id: str) -> None:
        """Drop what is cached for a peer (call it when the peer is gone)."""
        self._cache.pop(peer_id, None)

    def __len__(self) -> int:
        return len(self._cache)

    def _store(self, peer_id: str, token: str, outcome: TokenClaims | str) -> None:
        self._cache[peer_id] = (token, outcome)
        self._cache.move_to_end(peer_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _decode(self, token: str, peer_id: str | None) -> TokenClaims:
        self.verifications += 1
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                options={"require": ["exp"], "verify_aud": False},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired", EXPIRED) from None
        except jwt.MissingRequiredClaimError:
            raise TokenError("token has no exp claim", MISSING_EXP) from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not verify", FORGED) from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"token is not valid: {exc}", MALFORMED) from None
        return _claims(payload, peer_id)


def _claims(payload: dict[str, Any], peer_id: str | None) -> TokenClaims:
    node_id = payload.get("node_id")
    if not isinstance(node_id, str):
        raise TokenError("token has no node_id claim", MALFORMED)
    cv_hash = payload.get("cv_hash")
    if cv_hash is not None and not isinstance(cv_hash, str):
        raise TokenError("cv_hash claim is not a string", MALFORMED)
    if peer_id is not None:
        peers = payload.get("p2p_peers")
        if peers is None:
            raise TokenError("token is bound to no peer (no p2p_peers claim)", UNBOUND)
        if not isinstance(peers, list) or peer_id not in peers:
            raise TokenError(f"token is bound to other peers than {peer_id}", WRONG_PEER)
    exp = payload["exp"]
    if not isinstance(exp, (int, float)):
        raise TokenError("exp claim is not a number", MALFORMED)
    return TokenClaims(node_id=node_id, cv_hash=cv_hash, exp=float(exp), claims=payload)


def split_piggyback(piggyback: str) -> tuple[str, str]:
    """``(token, inspector_bit)`` from a piggyback field; TokenError if it has no token."""
    if len(piggyback) < 2:
        raise TokenError("message carries no token", NO_TOKEN)
    bit = piggyback[-1]
    if bit not in "01":
        raise TokenError(f"inspector bit is {bit!r}, not '0' or '1'", MALFORMED)
    return piggyback[:-1], bit
