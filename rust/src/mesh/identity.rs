//! Ed25519 identities in libp2p's protobuf key encoding (what go-libp2p's
//! `crypto.MarshalPrivateKey` writes to its key files).

use super::error::MeshErr;
use libp2p::identity::Keypair;

/// A key file is a few dozen bytes; anything much larger is not one.
pub const MAX_KEY_FILE: usize = 4096;

/// A fresh Ed25519 keypair, protobuf-encoded.
pub fn generate() -> Vec<u8> {
    // to_protobuf_encoding only fails for key types built without their feature;
    // ed25519 is always compiled in here.
    Keypair::generate_ed25519()
        .to_protobuf_encoding()
        .unwrap_or_default()
}

/// Decode a protobuf-encoded private key, accepting only Ed25519.
pub fn decode(bytes: &[u8]) -> Result<Keypair, MeshErr> {
    if bytes.len() > MAX_KEY_FILE {
        return Err(MeshErr::identity(format!(
            "key of {} bytes is not a libp2p private key (over {MAX_KEY_FILE})",
            bytes.len()
        )));
    }
    let key = Keypair::from_protobuf_encoding(bytes)
        .map_err(|e| MeshErr::identity(format!("not a libp2p private key: {e}")))?;
    if key.key_type() != libp2p::identity::KeyType::Ed25519 {
        return Err(MeshErr::identity(format!(
            "a {:?} key; peerpool identities are Ed25519",
            key.key_type()
        )));
    }
    Ok(key)
}

/// The base58 peer id (`12D3KooW...`) of a protobuf-encoded key.
pub fn peer_id(bytes: &[u8]) -> Result<String, MeshErr> {
    Ok(decode(bytes)?.public().to_peer_id().to_base58())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_and_have_ed25519_peer_ids() {
        let key = generate();
        let id = peer_id(&key).unwrap();
        assert!(id.starts_with("12D3KooW"), "{id}");
        assert_eq!(decode(&key).unwrap().to_protobuf_encoding().unwrap(), key);
    }

    #[test]
    fn garbage_and_oversize_are_identity_errors() {
        assert!(decode(b"not a key").is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&vec![8u8; MAX_KEY_FILE + 1]).is_err());
    }
}
