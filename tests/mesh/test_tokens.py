"""TokenVerifier: the three algorithms, every rejection reason, and the per-peer cache."""

from __future__ import annotations

import time

import jwt
import pytest

from peerpool.errors import TokenError
from peerpool.mesh import tokens
from peerpool.mesh.tokens import TokenVerifier, split_piggyback
from tests.mesh.keys import keypair, mint

PEER = "12D3KooWpeerA"
OTHER = "12D3KooWpeerB"


@pytest.mark.parametrize("alg", ["RS256", "EdDSA", "ES256"])
def test_each_algorithm_is_accepted(alg: str) -> None:
    verifier = TokenVerifier(keypair(alg)[1])
    assert verifier.algorithm == alg
    claims = verifier.verify(mint(alg, peers=[OTHER, PEER]), PEER)
    assert (claims.node_id, claims.cv_hash) == ("node-1", "cv-abc")
    assert claims.exp > time.time()


def reason_of(verifier: TokenVerifier, token: str, peer: str | None = PEER) -> str:
    with pytest.raises(TokenError) as info:
        verifier.verify(token, peer)
    assert isinstance(info.value, ValueError)  # bad input
    return info.value.reason


def test_rejections_have_reasons() -> None:
    v = TokenVerifier(keypair("RS256")[1])
    assert reason_of(v, mint(peers=[PEER], ttl=-10)) == tokens.EXPIRED
    assert reason_of(v, mint(peers=[PEER], ttl=None)) == tokens.MISSING_EXP
    assert reason_of(v, mint(peers=[OTHER])) == tokens.WRONG_PEER
    assert reason_of(v, mint()) == tokens.UNBOUND
    assert reason_of(v, "not.a.jwt") == tokens.MALFORMED
    assert reason_of(v, "") == tokens.NO_TOKEN
    # signed by another RSA key: forged
    import cryptography.hazmat.primitives.asymmetric.rsa as rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert reason_of(v, mint(peers=[PEER], key=other_key)) == tokens.FORGED
    # a valid signature with another algorithm than the key's is refused, not tried
    assert reason_of(v, mint("ES256", peers=[PEER])) == tokens.MALFORMED
    # HS256 with the public key as the secret (the classic confusion) is refused
    confused = jwt.encode(
        {"node_id": "x", "exp": time.time() + 60, "p2p_peers": [PEER]},
        "a-secret-long-enough-for-hs256-keys!",
        algorithm="HS256",
    )
    assert reason_of(v, confused) == tokens.MALFORMED
    # tampered payload
    good = mint(peers=[PEER])
    head, body, sig = good.split(".")
    tampered = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    assert reason_of(v, tampered) in (tokens.FORGED, tokens.MALFORMED)
    assert reason_of(v, mint(peers=[PEER], node_id=None)) == tokens.MALFORMED  # type: ignore[arg-type]


def test_a_stream_under_one_token_costs_one_verification() -> None:
    v = TokenVerifier(keypair("RS256")[1])
    token = mint(peers=[PEER, OTHER])
    for _ in range(100):
        v.verify(token, PEER)
    assert v.verifications == 1
    v.verify(token, OTHER)  # another peer: its own verification
    assert v.verifications == 2
    v.verify(mint(peers=[PEER], node_id="node-2"), PEER)  # a new token replaces the old
    assert v.verifications == 3


def test_cached_token_still_expires() -> None:
    now = [time.time()]
    v = TokenVerifier(keypair("EdDSA")[1], clock=lambda: now[0])
    token = mint("EdDSA", peers=[PEER], ttl=5)
    v.verify(token, PEER)
    now[0] += 10
    with pytest.raises(TokenError) as info:
        v.verify(token, PEER)
    assert info.value.reason == tokens.EXPIRED
    assert len(v) == 0  # the expired entry is gone


def test_rejections_are_cached_too() -> None:
    v = TokenVerifier(keypair("RS256")[1])
    token = mint(peers=[OTHER])
    for _ in range(5):
        assert reason_of(v, token) == tokens.WRONG_PEER
    assert v.verifications == 1


def test_cache_is_bounded_and_forgets() -> None:
    v = TokenVerifier(keypair("EdDSA")[1], cache_size=3)
    token = mint("EdDSA", peers=[f"p{i}" for i in range(10)])
    for i in range(10):
        v.verify(token, f"p{i}")
    assert len(v) == 3
    v.forget("p9")
    assert len(v) == 2
    v.verify(token, "p9")
    assert v.verifications == 11


def test_bad_key_is_a_typed_error() -> None:
    with pytest.raises(TokenError):
        TokenVerifier(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_piggyback_split() -> None:
    assert split_piggyback("abc.def.ghi1") == ("abc.def.ghi", "1")
    assert split_piggyback("abc.def.ghi0") == ("abc.def.ghi", "0")
    for bad, reason in (("", tokens.NO_TOKEN), ("0", tokens.NO_TOKEN), ("abc2", tokens.MALFORMED)):
        with pytest.raises(TokenError) as info:
            split_piggyback(bad)
        assert info.value.reason == reason
