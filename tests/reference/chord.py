"""Pure-Python Chord ring: the oracle of the chord kernel and its benchmark baseline.

Written from the issue's definitions with hashlib and Python ints only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

RING_SIZE = 2**384


def get_hashes(key: bytes | str) -> tuple[int, int, int, int, int]:
    """SHA-1 << 224, SHA-224 << 160, SHA-256 << 128, SHA-384, SHA-512 of the key."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    return (
        int.from_bytes(hashlib.sha1(data).digest(), "big") << 224,
        int.from_bytes(hashlib.sha224(data).digest(), "big") << 160,
        int.from_bytes(hashlib.sha256(data).digest(), "big") << 128,
        int.from_bytes(hashlib.sha384(data).digest(), "big"),
        int.from_bytes(hashlib.sha512(data).digest(), "big"),
    )


def distance(a: int, b: int, limit: int = RING_SIZE) -> int:
    """Clockwise distance from a to b."""
    return (b - a) % limit


def closest_before(ids: Sequence[int], key: int) -> int:
    """Index of the id minimising (key - id) mod 2**384; the first such index on ties."""
    return min(range(len(ids)), key=lambda i: ((key - ids[i]) % RING_SIZE, i))


def rows_to_ints(rows: npt.NDArray[np.uint8]) -> list[int]:
    """Each row of a 2-D uint8 array read as one big-endian integer."""
    return [int.from_bytes(bytes(row), "big") for row in rows]


def ints_to_rows(ids: Iterable[int], width: int = 48) -> npt.NDArray[np.uint8]:
    """The inverse of rows_to_ints."""
    rows = [list(i.to_bytes(width, "big")) for i in ids]
    return np.array(rows, dtype=np.uint8).reshape(-1, width)
