"""Key pairs and token minting for the token and pools tests (generated once per process)."""

from __future__ import annotations

import functools
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


@functools.cache
def keypair(alg: str) -> tuple[Any, bytes]:
    """(private key, public PEM) for RS256 (RSA-2048), EdDSA (Ed25519) or ES256 (P-256)."""
    if alg == "RS256":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(alg)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem


def mint(
    alg: str = "RS256",
    *,
    peers: list[str] | None = None,
    node_id: str = "node-1",
    ttl: float | None = 3600,
    key: Any = None,
    **claims: Any,
) -> str:
    payload: dict[str, Any] = {"node_id": node_id, "cv_hash": "cv-abc", **claims}
    if peers is not None:
        payload["p2p_peers"] = peers
    if ttl is not None:
        payload["exp"] = int(time.time() + ttl)
    return jwt.encode(payload, key if key is not None else keypair(alg)[0], algorithm=alg)
