//! SHA-256 and double SHA-256 of many independent messages at once: the
//! txids and script hashes of the columnar parser.
//!
//! On x86-64 with SHA-NI the messages go through `sha_ni`, several
//! interleaved; elsewhere (other CPUs, other targets) each message is hashed
//! by the `sha2` crate in turn. Both give the same digests; the tests compare
//! them with `sha2` on every length up to 300 bytes, random lengths up to
//! 100 KiB, and every batch size up to 17.

use super::message::Message;
use sha2::{Digest, Sha256};

/// SHA-256 of each message, into the row of `out` of the same index (`out`
/// must have a row for every message).
pub fn sha256_batch<'a, I>(messages: I, out: &mut [[u8; 32]])
where
    I: IntoIterator<Item = Message<'a>>,
{
    let messages = messages.into_iter();
    #[cfg(target_arch = "x86_64")]
    if super::sha_ni::available() {
        // SAFETY: available() confirmed SHA-NI and SSE4.1 on this CPU.
        unsafe { super::sha_ni::sha256_many::<_, { super::sha_ni::LANES }>(messages, out) };
        return;
    }
    for (message, row) in messages.zip(out.iter_mut()) {
        *row = one_by_one(&message);
    }
}

/// SHA-256(SHA-256(message)) of each message, into `out` as `sha256_batch`.
pub fn sha256d_batch<'a, I>(messages: I, out: &mut [[u8; 32]])
where
    I: IntoIterator<Item = Message<'a>>,
{
    sha256_batch(messages, out);
    sha256_rows_in_place(out);
}

/// Replace each 32-byte row by its SHA-256.
pub fn sha256_rows_in_place(rows: &mut [[u8; 32]]) {
    #[cfg(target_arch = "x86_64")]
    if super::sha_ni::available() {
        // SAFETY: available() confirmed SHA-NI and SSE4.1 on this CPU.
        unsafe { super::sha_ni::sha256_rows_in_place(rows) };
        return;
    }
    for row in rows {
        *row = Sha256::digest(*row).into();
    }
}

/// The portable path: `sha2` over the message's slices.
pub fn one_by_one(message: &Message<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in message.parts {
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
