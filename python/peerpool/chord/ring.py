"""The Chord ring for one id or key at a time: the five hashes and the distance.

Ring ids are 384-bit integers. On the wire and in batches they are 48
big-endian bytes; here they are plain Python ints.
"""

from __future__ import annotations

import operator
from typing import Final

from peerpool import _core
from peerpool.errors import RingIdError

RING_BITS: Final = 384
"""Bits of a ring id (py2p's ring: SHA-384 sized)."""
# annotated: a power with a non-literal exponent is Any to a type checker
RING_SIZE: Final[int] = 2**RING_BITS
"""The number of positions on the ring; every distance is taken modulo it."""
ID_BYTES = RING_BITS // 8
"""Bytes of a ring id in its big-endian form (48)."""
SHA512_BYTES = 64
"""Bytes of a SHA-512 digest (py2p stores SHA-512 positions reduced mod ``RING_SIZE``)."""

Key = bytes | str
Hashes = tuple[int, int, int, int, int]


def get_hashes(key: Key) -> Hashes:
    """The five hashes of ``key`` (``bytes``, or ``str`` hashed as UTF-8).

    In order: SHA-1 << 224, SHA-224 << 160, SHA-256 << 128 (each shifted to
    fill the 384-bit ring), SHA-384, and SHA-512 as is, which is not reduced
    and so can exceed ``2**384``. Raises :class:`RingIdError` for a key of
    another type or a ``str`` with no UTF-8 encoding (a lone surrogate).
    """
    # The shifts are already applied: the kernel writes each digest at the
    # front of its 48 bytes, so reading them big-endian is all that is left.
    sha1, sha224, sha256, sha384, sha512 = _core.chord_hashes(key)
    return (
        int.from_bytes(sha1, "big"),
        int.from_bytes(sha224, "big"),
        int.from_bytes(sha256, "big"),
        int.from_bytes(sha384, "big"),
        int.from_bytes(sha512, "big"),
    )


def distance(a: int, b: int, limit: int | None = None) -> int:
    """Clockwise distance from ``a`` to ``b`` on a ring of ``limit`` positions.

    That is ``(b - a) mod limit``, exactly as py2p computes it: ``a`` and ``b``
    may be any ints, including a key's fifth hash (SHA-512, unreduced, above
    ``2**384``), and ``limit`` of ``None`` or ``0`` means the full ring
    (py2p writes ``limit or 2**384``). A negative limit, or an ``a``, ``b`` or
    ``limit`` that is not an integer, raises :class:`RingIdError`.
    """
    # Plain int arithmetic on purpose: for one pair, a kernel call would
    # spend more converting both ids to 48 bytes and the answer back to an int
    # than the one subtraction costs. Batches go to distance_batch.
    modulus = RING_SIZE if limit is None else _as_int(limit, "limit")
    if modulus == 0:
        modulus = RING_SIZE
    elif modulus < 0:
        raise RingIdError(f"limit must be positive (or 0 for the full ring), not {modulus}")
    return (_as_int(b, "b") - _as_int(a, "a")) % modulus


def ring_id(value: object, limit: int = RING_SIZE, name: str = "ring id") -> int:
    """``value`` as an int in ``[0, limit)``, or :class:`RingIdError`."""
    number = _as_int(value, name)
    if not 0 <= number < limit:
        raise RingIdError(f"{name} {number} is outside the ring [0, {_describe(limit)})")
    return number


def ring_size(limit: object, maximum: int | None = None) -> int:
    """``limit`` as a positive int no greater than ``maximum``, or :class:`RingIdError`."""
    number = _as_int(limit, "limit")
    if number <= 0:
        raise RingIdError(f"limit must be positive, not {number}")
    if maximum is not None and number > maximum:
        raise RingIdError(f"limit {number} is above {_describe(maximum)}")
    return number


def id_to_bytes(value: int, width: int = ID_BYTES) -> bytes:
    """A ring id as ``width`` big-endian bytes (64 for a SHA-512 value)."""
    number = ring_id(value, 1 << (8 * width))
    return number.to_bytes(width, "big")


def id_from_bytes(data: bytes) -> int:
    """The ring id held in big-endian bytes (48, or 64 for a SHA-512 value)."""
    if len(data) not in (ID_BYTES, SHA512_BYTES):
        raise RingIdError(f"a ring id is {ID_BYTES} or {SHA512_BYTES} bytes, not {len(data)}")
    return int.from_bytes(data, "big")


def _as_int(value: object, name: str) -> int:
    # bool is an int to Python, but a ring id of True is a bug, not a position.
    if isinstance(value, bool):
        raise RingIdError(f"{name} must be an integer, not bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise RingIdError(f"{name} must be an integer, not {type(value).__name__}") from None


def _describe(limit: int) -> str:
    # 2**384 printed in full is 116 digits of noise in an error message.
    if limit > 0 and limit & (limit - 1) == 0 and limit > 2**32:
        return f"2**{limit.bit_length() - 1}"
    return str(limit)
