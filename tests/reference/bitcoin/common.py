"""Shared by the reference kernels: limits, the rejection type, double SHA-256."""

from __future__ import annotations

import hashlib

MAX_U64 = 2**64 - 1
HEADER_LEN = 80


class Rejected(ValueError):
    """The reference refuses the input: ``kind`` says why, ``offset`` where."""

    def __init__(self, kind: str, offset: int, detail: str = "") -> None:
        super().__init__(f"{kind} at {offset}: {detail}")
        self.kind = kind
        self.offset = offset


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()
