"""Shared helpers for the JoinMarket tests: fixed identities so failures reproduce."""

from __future__ import annotations

from peerpool.joinmarket.identity import NickIdentity


def identity(n: int) -> NickIdentity:
    """A deterministic identity; ``n`` in 1..255."""
    return NickIdentity(bytes([n]) * 32)
