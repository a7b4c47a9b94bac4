"""Identity: Ed25519 keys in libp2p's protobuf encoding, key files with mode 0400."""

from __future__ import annotations

import os
import stat

import pytest

from peerpool.errors import MeshIdentityError, PeerpoolError
from peerpool.mesh import Identity


def test_generated_identity_has_an_ed25519_peer_id_and_go_key_encoding() -> None:
    ident = Identity.generate()
    assert ident.peer_id.startswith("12D3KooW")
    key = ident.to_protobuf_bytes()
    # PrivateKey{Type = 1 (Ed25519), Data = 64 bytes (seed || public key)}
    assert key[:4] == b"\x08\x01\x12\x40" and len(key) == 68
    assert Identity(key).peer_id == ident.peer_id
    assert Identity.generate().peer_id != ident.peer_id


def test_save_creates_mode_0400_and_load_gives_the_same_peer_id(tmp_path) -> None:
    ident = Identity.generate()
    path = tmp_path / "node.key"
    ident.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    assert path.read_bytes() == ident.to_protobuf_bytes()
    loaded = Identity.load(path)
    assert loaded.peer_id == ident.peer_id and loaded == ident


def test_save_refuses_to_overwrite(tmp_path) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"something else")
    with pytest.raises(MeshIdentityError, match="already exists"):
        Identity.generate().save(path)
    assert path.read_bytes() == b"something else"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key at all",
        # a secp256k1 key in the same encoding (Type = 2): a foreign key type
        b"\x08\x02\x12\x20" + bytes(range(1, 33)),
        # Ed25519 type with a truncated body
        b"\x08\x01\x12\x40" + bytes(10),
        b"\x00" * 5000,
    ],
    ids=["empty", "text", "secp256k1", "truncated", "huge"],
)
def test_invalid_or_foreign_key_files_are_identity_errors(tmp_path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(MeshIdentityError) as info:
        Identity.load(path)
    assert isinstance(info.value, PeerpoolError) and isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


def test_missing_key_file_is_an_identity_error(tmp_path) -> None:
    with pytest.raises(MeshIdentityError, match="cannot read"):
        Identity.load(tmp_path / "absent.key")
