//! Double SHA-256, the hash Bitcoin uses for block headers, transactions and
//! message checksums. `sha2` picks the SHA-NI instructions at run time when the
//! CPU has them, which is what makes it as fast as OpenSSL. `batch` hashes many
//! independent messages at once (txids, script hashes), faster than one
//! `sha2` stream: see there.

use sha2::{Digest, Sha256};

#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod batch;
pub mod message;
#[cfg(target_arch = "x86_64")]
mod sha_ni;

pub use batch::{sha256_batch, sha256_rows_in_place, sha256d_batch};
pub use message::Message;

/// SHA-256(SHA-256(data)), in internal byte order (as hashed, not reversed).
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

/// Finish a double SHA-256 whose first pass was fed incrementally.
pub fn finish_sha256d(first_pass: Sha256) -> [u8; 32] {
    Sha256::digest(first_pass.finalize()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_checksum_is_the_well_known_one() {
        // Every Bitcoin verack carries checksum 5df6e0e2: sha256d of nothing.
        assert_eq!(&sha256d(b"")[..4], &[0x5d, 0xf6, 0xe0, 0xe2]);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = Sha256::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(finish_sha256d(h), sha256d(b"hello world"));
    }
}
