"""What every part of the ring core shares: node references, the five methods,
interval tests on the ring, and the checks on keys and values."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from peerpool.chord.ring import RING_SIZE
from peerpool.errors import ChordConfigError, ChordTypeError, ValueTooLargeError

#: The five hash tables of py2p, in get_hashes order; on the wire by index.
METHODS = ("sha1", "sha224", "sha256", "sha384", "sha512")
#: A key's value is decided by more than half of its five positions (py2p: ``count > 5 // 2``).
MAJORITY = len(METHODS) // 2 + 1
#: Keys are hashed whole on every call and stored five times: keep them short.
MAX_KEY_BYTES = 4096
MAX_ADDRS = 8
#: Ring ids a node may choose among when it joins (``id_choices``); the bound
#: keeps ids verifiable and limits how far a node can steer its own position.
MAX_ID_CHOICES = 64


def node_id(peer_id: str, choice: int = 0) -> int:
    """A node's ring id: SHA-384 of its identity (the mesh peer id, as UTF-8),
    py2p's id; choice ``i > 0`` is SHA-384 of ``"<peer id>#<i>"``, one of the
    other ids a node that balances its load may take (see ``id_choices``)."""
    if not 0 <= choice < MAX_ID_CHOICES:
        raise ChordConfigError(f"id choice {choice} is outside 0..{MAX_ID_CHOICES - 1}")
    name = peer_id if choice == 0 else f"{peer_id}#{choice}"
    return int.from_bytes(hashlib.sha384(name.encode("utf-8")).digest(), "big")


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A ring member: its mesh peer id, the addresses to dial it at, which of
    its candidate ids it took (0: py2p's), and its ring id (derived from those,
    so a peer cannot claim an arbitrary position)."""

    peer_id: str
    addrs: tuple[str, ...] = ()
    id: int = field(default=-1, compare=False, hash=False)
    choice: int = 0

    def __post_init__(self) -> None:
        if self.id < 0:
            object.__setattr__(self, "id", node_id(self.peer_id, self.choice))


def between(x: int, a: int, b: int) -> bool:
    """``x`` in the ring interval ``(a, b]``; ``(a, a]`` is the whole ring."""
    dx = (x - a) % RING_SIZE
    db = (b - a) % RING_SIZE
    return db == 0 or 0 < dx <= db


def strictly_between(x: int, a: int, b: int) -> bool:
    """``x`` in the open ring interval ``(a, b)``; ``(a, a)`` is all but ``a``."""
    dx = (x - a) % RING_SIZE
    db = (b - a) % RING_SIZE
    return dx != 0 and (db == 0 or dx < db)


def check_key(key: object) -> bytes | str:
    """A key as accepted: ``str`` (hashed as UTF-8) or bytes-like (kept as bytes)."""
    if isinstance(key, str):
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise ValueTooLargeError(f"key of {size} bytes is over {MAX_KEY_BYTES}")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ChordTypeError("key is a str with no UTF-8 encoding") from None
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        # Sized before the copy: a huge buffer is refused without allocating.
        size = memoryview(key).nbytes
        if size > MAX_KEY_BYTES:
            raise ValueTooLargeError(f"key of {size} bytes is over {MAX_KEY_BYTES}")
        return bytes(key)
    raise ChordTypeError(f"a key must be str or bytes-like, not {type(key).__name__}")


def check_value(value: object, limit: int) -> bytes | str:
    """A value as accepted: ``str`` or bytes-like, at most ``limit`` bytes."""
    if isinstance(value, str):
        # len() bounds the UTF-8 size from below and 4*len() from above, so a
        # huge str is refused before it is encoded.
        if len(value) > limit:
            raise ValueTooLargeError(f"value of {len(value)}+ bytes is over {limit}")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ChordTypeError("value is a str with no UTF-8 encoding") from None
        if size > limit:
            raise ValueTooLargeError(f"value of {size} bytes is over {limit}")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        size = memoryview(value).nbytes
        if size > limit:
            raise ValueTooLargeError(f"value of {size} bytes is over {limit}")
        return bytes(value)
    raise ChordTypeError(f"a value must be str or bytes-like, not {type(value).__name__}")
