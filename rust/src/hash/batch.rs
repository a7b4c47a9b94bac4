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

/// SHA-256 of each message, into the row of `out` of the same index (extra
/// messages are left out, extra rows left alone).
pub fn sha256_batch<'a, I>(messages: I, out: &mut [[u8; 32]])
where
    I: IntoIterator<Item = Message<'a>>,
{
    let messages = messages.into_iter().take(out.len()).enumerate();
    #[cfg(target_arch = "x86_64")]
    if super::sha_ni::available() {
        sha256_batch_x86(messages, out);
        return;
    }
    for (row, message) in messages {
        out[row] = one_by_one(&message);
    }
}

/// `sha256_batch` on a CPU with SHA-NI: one-block messages sixteen at a time
/// with AVX-512 when the CPU has it, the others through the SHA-NI lanes, in
/// one pass over the messages.
#[cfg(target_arch = "x86_64")]
fn sha256_batch_x86<'a>(
    messages: impl Iterator<Item = (usize, Message<'a>)>,
    out: &mut [[u8; 32]],
) {
    use super::message::ONE_BLOCK_MAX;
    use super::{avx512, sha_ni};
    // Both kinds of messages write rows of `out`, each its own.
    let out = std::cell::Cell::from_mut(out).as_slice_of_cells();
    if !avx512::available() {
        // SAFETY: the caller checked sha_ni::available().
        unsafe { sha_ni::sha256_many::<_, { sha_ni::LANES }>(messages, out) };
        return;
    }
    // SAFETY: available() confirmed AVX-512F and AVX-512BW, the caller SHA-NI.
    let mut short = unsafe { avx512::OneBlockMessages::new(out) };
    let long = messages.filter(|(row, message)| {
        let one_block = message.len() <= ONE_BLOCK_MAX;
        if one_block {
            short.push(*row, message);
        }
        !one_block
    });
    // SAFETY: the caller checked sha_ni::available().
    unsafe { sha_ni::sha256_many::<_, { sha_ni::LANES }>(long, out) };
    short.flush();
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
    {
        use super::{avx512, sha_ni};
        let mut done = 0;
        if avx512::available() {
            // SAFETY: available() confirmed AVX-512F and AVX-512BW.
            done = unsafe { avx512::rows_in_place(rows) };
        }
        if sha_ni::available() {
            // SAFETY: available() confirmed SHA-NI and SSE4.1 on this CPU.
            unsafe { sha_ni::sha256_rows_in_place(&mut rows[done..]) };
            return;
        }
        for row in &mut rows[done..] {
            *row = Sha256::digest(*row).into();
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
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
