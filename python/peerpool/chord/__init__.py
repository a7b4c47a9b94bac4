"""Chord: the ring (ids, hashes, distances) and, on top of it, the DHT.

Ring ids are 384-bit integers. ``get_hashes`` and ``distance`` work on one key
or pair of ids as Python ints; the ``*_batch`` forms and ``closest_before``
work on numpy arrays of 48-byte big-endian ids in the Rust kernel.
``ChordNode`` is the DHT (py2p's dict API, async) on a mesh transport.
"""

from peerpool.chord.batch import (
    HashColumns,
    array_to_ids,
    as_id_array,
    closest_before,
    distance_batch,
    get_hashes_batch,
    ids_to_array,
)
from peerpool.chord.node import ChordNode
from peerpool.chord.ring import (
    ID_BYTES,
    RING_BITS,
    RING_SIZE,
    SHA512_BYTES,
    distance,
    get_hashes,
    id_from_bytes,
    id_to_bytes,
    ring_id,
    ring_size,
)
from peerpool.chord.transport import PROTOCOL, Transport
from peerpool.chord.types import NodeRef

__all__ = [
    "ID_BYTES",
    "PROTOCOL",
    "RING_BITS",
    "RING_SIZE",
    "SHA512_BYTES",
    "ChordNode",
    "HashColumns",
    "NodeRef",
    "Transport",
    "array_to_ids",
    "as_id_array",
    "closest_before",
    "distance",
    "distance_batch",
    "get_hashes",
    "get_hashes_batch",
    "id_from_bytes",
    "id_to_bytes",
    "ids_to_array",
    "ring_id",
    "ring_size",
]
