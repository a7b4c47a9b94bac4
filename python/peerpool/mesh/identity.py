"""Ed25519 node identities, stored as go-libp2p stores them.

A key file holds libp2p's protobuf private-key encoding (``PrivateKey{Type:
Ed25519, Data: seed||public}``), what go-libp2p's ``crypto.MarshalPrivateKey``
writes, so an agent's existing key file keeps its peer id here. The encoding
and the peer id come from rust-libp2p (``peerpool._core``), not from code of
ours.
"""

from __future__ import annotations

import os

from peerpool import _core
from peerpool.errors import MeshIdentityError

# A libp2p Ed25519 key file is 68 bytes; anything past this is not one.
_MAX_KEY_FILE = 4096


class Identity:
    """An Ed25519 keypair and its peer id (``12D3KooW...``)."""

    __slots__ = ("_key", "_peer_id")

    def __init__(self, protobuf_key: bytes) -> None:
        """From libp2p's protobuf key encoding; MeshIdentityError if it is not an Ed25519 key."""
        self._peer_id = _core.mesh_identity_peer_id(bytes(protobuf_key))
        self._key = bytes(protobuf_key)

    @classmethod
    def generate(cls) -> Identity:
        """A fresh random Ed25519 identity."""
        return cls(_core.mesh_identity_generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file as go-libp2p writes it (libp2p's protobuf private-key encoding).

        Raises:
            peerpool.errors.MeshIdentityError: the file cannot be read, is too large,
                or does not hold an Ed25519 key.
        """
        try:
            with open(path, "rb") as f:
                data = f.read(_MAX_KEY_FILE + 1)
        except OSError as exc:
            raise MeshIdentityError(f"cannot read key file {os.fspath(path)!r}: {exc}") from exc
        if len(data) > _MAX_KEY_FILE:
            raise MeshIdentityError(f"{os.fspath(path)!r} is too large to be a libp2p key file")
        try:
            return cls(data)
        except MeshIdentityError as exc:
            raise MeshIdentityError(f"{os.fspath(path)!r}: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key to a new file readable by its owner only (mode 0400).

        Refuses to overwrite: replacing a key file changes the node's peer id.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        except FileExistsError as exc:
            raise MeshIdentityError(f"key file {os.fspath(path)!r} already exists") from exc
        except OSError as exc:
            raise MeshIdentityError(f"cannot create key file {os.fspath(path)!r}: {exc}") from exc
        try:
            # the umask may have narrowed the mode; it must not stay wider than 0400
            os.fchmod(fd, 0o400)
            view = memoryview(self._key)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def peer_id(self) -> str:
        """The peer id (``12D3KooW...``) derived from the public key."""
        return self._peer_id

    def to_protobuf_bytes(self) -> bytes:
        """The private key in libp2p's protobuf encoding (what ``save`` writes): keep it secret."""
        return self._key

    def __repr__(self) -> str:
        return f"Identity({self._peer_id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._peer_id)
