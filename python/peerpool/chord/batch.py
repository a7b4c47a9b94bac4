"""The Chord ring for many keys or ids at once, as numpy arrays.

A batch of ring ids is a C-contiguous ``uint8`` array of shape ``(n, 48)``,
each row one id in big-endian order (SHA-512 values: ``(n, 64)``). Rows of
big-endian bytes compare like the integers they hold, and the whole batch is
one buffer that the Rust kernel reads in place with the GIL released.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from peerpool import _core
from peerpool.chord.ring import ID_BYTES, RING_SIZE, Key, id_to_bytes, ring_id, ring_size
from peerpool.errors import RingIdError

IdArray = npt.NDArray[np.uint8]
#: What the batch functions take as ids: an (n, 48) array, one (48,) row, one
#: int, or an iterable of ints (converted with ids_to_array).
Ids = IdArray | int | Iterable[int]


class HashColumns(NamedTuple):
    """The five hashes of a batch of keys, one row per key, in get_hashes order."""

    sha1: IdArray  # (n, 48): SHA-1 << 224
    sha224: IdArray  # (n, 48): SHA-224 << 160
    sha256: IdArray  # (n, 48): SHA-256 << 128
    sha384: IdArray  # (n, 48)
    sha512: IdArray  # (n, 64), not reduced


def get_hashes_batch(keys: Iterable[Key]) -> HashColumns:
    """The five hashes of every key (``bytes``, or ``str`` as UTF-8).

    Row ``i`` of each column belongs to key ``i``; ``array_to_ids`` turns a
    column into the ints that ``get_hashes`` gives. A key that is neither bytes
    nor str raises :class:`RingIdError`, naming its index.
    """
    return HashColumns(*_core.chord_hashes_batch(keys))


def distance_batch(origins: Ids, targets: Ids, limit: int = RING_SIZE) -> IdArray:
    """Clockwise distances ``(target - origin) mod limit``, row by row.

    Either side may be a single id, used against every row of the other.
    Every id must be in ``[0, limit)`` and ``0 < limit <= 2**384``; otherwise
    :class:`RingIdError` (naming the offending row).
    """
    limit = ring_size(limit, maximum=RING_SIZE)
    # 2**384 does not fit in 48 bytes; the kernel takes None for the full ring.
    limit_bytes = None if limit == RING_SIZE else id_to_bytes(limit)
    return _core.chord_distances(
        as_id_array(origins, "origins"), as_id_array(targets, "targets"), limit_bytes
    )


def closest_before(ids: Ids, key: int) -> int:
    """Index of the id closest before ``key`` going clockwise round the ring.

    It minimises ``(key - id) mod 2**384``, so an id equal to the key wins
    ("at or before"), and with no id at or below the key the search wraps to
    the largest id. Ties (repeated ids) go to the smallest index. The answer
    is the same on any smaller ring that holds the key and the ids. No ids at
    all raises :class:`RingIdError`.
    """
    return _core.chord_closest_before(as_id_array(ids, "ids"), id_to_bytes(key))


def ids_to_array(ids: Iterable[int], width: int = ID_BYTES) -> IdArray:
    """Ring ids (ints) as an ``(n, width)`` uint8 array of big-endian rows."""
    rows = bytearray().join(id_to_bytes(i, width) for i in ids)
    return np.frombuffer(rows, dtype=np.uint8).reshape(-1, width)


def array_to_ids(array: IdArray) -> list[int]:
    """The ints held in the rows of a 2-D uint8 array (any row width)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 2:
        raise RingIdError("expected a 2-D uint8 array of big-endian ids")
    raw = array.tobytes()
    width = array.shape[1]
    return [int.from_bytes(raw[k : k + width], "big") for k in range(0, len(raw), width)]


def as_id_array(ids: Ids, name: str = "ids") -> IdArray:
    """Any accepted form of ids as the C-contiguous ``(n, 48)`` array the kernel reads."""
    if isinstance(ids, np.ndarray):
        if ids.dtype != np.uint8:
            raise RingIdError(f"{name} must be a uint8 array, not {ids.dtype}")
        if ids.shape == (ID_BYTES,):
            ids = ids.reshape(1, ID_BYTES)
        if ids.ndim != 2 or ids.shape[1] != ID_BYTES:
            raise RingIdError(f"{name} must have shape (n, {ID_BYTES}), not {ids.shape}")
        return np.ascontiguousarray(ids)
    if isinstance(ids, (bytes, bytearray, memoryview, str)):
        # Bytes are iterable as ints, which would silently make each byte an id.
        raise RingIdError(f"{name} must be ints or a uint8 array, not {type(ids).__name__}")
    if isinstance(ids, Iterable):
        return ids_to_array(ids)
    return ids_to_array([ring_id(ids, name=name)])
