//! Chord ring arithmetic and hashing.
//!
//! Ring ids are 384-bit unsigned integers, held as 48 big-endian bytes so that
//! a batch of ids is one flat buffer (and, in Python, a `(n, 48)` uint8 array
//! whose rows sort and compare like the integers they hold). A key is hashed
//! five ways (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512); the four shorter
//! digests are shifted left to fill the 384-bit ring, which, in 48 big-endian
//! bytes, means the digest followed by zero bytes. SHA-512 is kept whole (64
//! bytes), as the issue asks: it is not reduced, so it can exceed 2^384.
//!
//! Arithmetic runs on six u64 limbs, most significant first, so that comparing
//! limb arrays lexicographically compares the numbers.

use crate::error::KernelError;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use std::fmt;
use std::mem::MaybeUninit;

/// Bytes in a ring id: the ring has 2^384 positions.
pub const ID_BYTES: usize = 48;
/// Bytes in the unreduced SHA-512 column.
pub const SHA512_BYTES: usize = 64;
const LIMBS: usize = ID_BYTES / 8;

/// A ring id: a 384-bit unsigned integer, big-endian.
pub type RingId = [u8; ID_BYTES];
type Limbs = [u64; LIMBS];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingIdError {
    /// A buffer of ids whose length is not a whole number of 48-byte ids.
    Ragged { what: &'static str, len: usize },
    /// Two batches meant to be paired element by element differ in size.
    CountMismatch { origins: usize, targets: usize },
    /// `closest_before` over no ids has no answer.
    NoIds,
    /// A modulus of zero: the ring needs at least one position.
    ZeroLimit,
    /// An id not below the ring size; `index` is its row in the batch.
    OutOfRange { what: &'static str, index: usize },
}

impl fmt::Display for RingIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ragged { what, len } => write!(
                f,
                "{what}: {len} bytes is not a whole number of {ID_BYTES}-byte ring ids"
            ),
            Self::CountMismatch { origins, targets } => write!(
                f,
                "{origins} origins and {targets} targets: pairwise distance needs equal counts \
                 (or a single id on one side)"
            ),
            Self::NoIds => write!(f, "closest_before needs at least one id"),
            Self::ZeroLimit => write!(f, "the ring size (limit) must be positive"),
            Self::OutOfRange { what, index } => {
                write!(f, "{what}[{index}] is not below the ring size (limit)")
            }
        }
    }
}

impl KernelError for RingIdError {
    fn py_class(&self) -> &'static str {
        "RingIdError"
    }
    fn offset(&self) -> Option<u64> {
        match self {
            // Where the bad id starts in its buffer.
            Self::OutOfRange { index, .. } => Some((index * ID_BYTES) as u64),
            _ => None,
        }
    }
}

// --- hashing -------------------------------------------------------------------

/// The five hashes of one key, in the order the issue lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHashes {
    /// SHA-1 << 224
    pub sha1: RingId,
    /// SHA-224 << 160
    pub sha224: RingId,
    /// SHA-256 << 128
    pub sha256: RingId,
    /// SHA-384 as is
    pub sha384: RingId,
    /// SHA-512 as is (64 bytes, not reduced)
    pub sha512: [u8; SHA512_BYTES],
}

/// Hash one key five ways.
pub fn hash_key(key: &[u8]) -> KeyHashes {
    let mut out = KeyHashes {
        sha1: [0; ID_BYTES],
        sha224: [0; ID_BYTES],
        sha256: [0; ID_BYTES],
        sha384: [0; ID_BYTES],
        sha512: [0; SHA512_BYTES],
    };
    write_hashes(
        key,
        [
            &mut out.sha1,
            &mut out.sha224,
            &mut out.sha256,
            &mut out.sha384,
        ],
        &mut out.sha512,
    );
    out
}

/// Write the hashes of `key` into rows that the caller zeroed: shifting a
/// digest left to fill 384 bits is writing it at the front of the row.
fn write_hashes(key: &[u8], rows: [&mut [u8]; 4], sha512_row: &mut [u8]) {
    let [r1, r224, r256, r384] = rows;
    r1[..20].copy_from_slice(&Sha1::digest(key));
    r224[..28].copy_from_slice(&Sha224::digest(key));
    r256[..32].copy_from_slice(&Sha256::digest(key));
    r384.copy_from_slice(&Sha384::digest(key));
    sha512_row.copy_from_slice(&Sha512::digest(key));
}

/// The five hash columns of a batch of keys: four buffers of `n * 48` bytes
/// and one of `n * 64`, row `i` belonging to key `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashColumns {
    pub sha1: Vec<u8>,
    pub sha224: Vec<u8>,
    pub sha256: Vec<u8>,
    pub sha384: Vec<u8>,
    pub sha512: Vec<u8>,
}

/// Hash every key five ways.
pub fn hash_keys<K: AsRef<[u8]>>(keys: &[K]) -> HashColumns {
    let n = keys.len();
    // Zeroed up front: the zero tail of each shifted digest is then already there.
    let mut cols = HashColumns {
        sha1: vec![0; n * ID_BYTES],
        sha224: vec![0; n * ID_BYTES],
        sha256: vec![0; n * ID_BYTES],
        sha384: vec![0; n * ID_BYTES],
        sha512: vec![0; n * SHA512_BYTES],
    };
    let rows = cols
        .sha1
        .chunks_exact_mut(ID_BYTES)
        .zip(cols.sha224.chunks_exact_mut(ID_BYTES))
        .zip(cols.sha256.chunks_exact_mut(ID_BYTES))
        .zip(cols.sha384.chunks_exact_mut(ID_BYTES))
        .zip(cols.sha512.chunks_exact_mut(SHA512_BYTES));
    for (key, ((((r1, r224), r256), r384), r512)) in keys.iter().zip(rows) {
        write_hashes(key.as_ref(), [r1, r224, r256, r384], r512);
    }
    cols
}

// --- arithmetic ----------------------------------------------------------------

// Fixed-size arrays throughout, so that the compiler sees every length and
// turns load/store into six byte-swapped 8-byte moves with no bounds checks
// (measured: a third faster than slices here).
#[inline(always)]
fn load(id: &RingId) -> Limbs {
    let mut limbs = [0u64; LIMBS];
    for (k, limb) in limbs.iter_mut().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&id[k * 8..k * 8 + 8]);
        *limb = u64::from_be_bytes(word);
    }
    limbs
}

#[inline(always)]
fn store(limbs: &Limbs) -> RingId {
    let mut out = [0u8; ID_BYTES];
    for (k, limb) in limbs.iter().enumerate() {
        out[k * 8..k * 8 + 8].copy_from_slice(&limb.to_be_bytes());
    }
    out
}

/// The 48-byte rows of a buffer whose length `count_ids` has checked.
#[inline(always)]
fn rows(buf: &[u8]) -> impl Iterator<Item = &RingId> {
    // Every chunk of chunks_exact is 48 bytes, so the conversion never fails
    // and the optimizer drops the check.
    buf.chunks_exact(ID_BYTES)
        .filter_map(|row| <&RingId>::try_from(row).ok())
}

/// `b - a` modulo 2^384, and whether it wrapped (that is, `b < a`).
#[inline(always)]
fn sub(b: &Limbs, a: &Limbs) -> (Limbs, bool) {
    let mut out = [0u64; LIMBS];
    let mut borrow = false;
    for i in (0..LIMBS).rev() {
        let (d, b1) = b[i].overflowing_sub(a[i]);
        let (d, b2) = d.overflowing_sub(borrow as u64);
        out[i] = d;
        borrow = b1 | b2;
    }
    (out, borrow)
}

#[inline(always)]
fn add(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = [0u64; LIMBS];
    let mut carry = false;
    for i in (0..LIMBS).rev() {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(carry as u64);
        out[i] = s;
        carry = c1 | c2;
    }
    out
}

/// The clockwise distance from `a` to `b` on the full ring: `(b - a) mod 2^384`.
pub fn distance(a: &RingId, b: &RingId) -> RingId {
    store(&sub(&load(b), &load(a)).0)
}

/// Number of ids in a flat buffer, checking that it holds whole ids.
pub fn count_ids(buf: &[u8], what: &'static str) -> Result<usize, RingIdError> {
    if !buf.len().is_multiple_of(ID_BYTES) {
        return Err(RingIdError::Ragged {
            what,
            len: buf.len(),
        });
    }
    Ok(buf.len() / ID_BYTES)
}

/// Clockwise distances `(target - origin) mod limit` over flat buffers of ids.
///
/// `origins` and `targets` hold the same number of ids (paired row by row), or
/// one of them holds a single id that is used against every row of the other.
/// `limit` is the ring size; `None` means the full 2^384 ring. With a limit,
/// every id must be below it (the distance of ids outside the ring is not
/// defined), and the result is in `[0, limit)`.
pub fn distances(
    origins: &[u8],
    targets: &[u8],
    limit: Option<&RingId>,
) -> Result<Vec<u8>, RingIdError> {
    let n_origins = count_ids(origins, "origins")?;
    let n_targets = count_ids(targets, "targets")?;
    let n = match (n_origins, n_targets) {
        (a, b) if a == b => a,
        (1, b) => b,
        (a, 1) => a,
        (a, b) => {
            return Err(RingIdError::CountMismatch {
                origins: a,
                targets: b,
            })
        }
    };
    let Some(limit) = limit else {
        // On the full ring the wrapping subtraction is the whole answer.
        return Ok(full_ring_distances(origins, targets, n));
    };
    if limit.iter().all(|&byte| byte == 0) {
        return Err(RingIdError::ZeroLimit);
    }
    let limit = load(limit);
    // Checked up front, in a pass of its own, so that the hot loop cannot fail.
    check_below(origins, &limit, "origins")?;
    check_below(targets, &limit, "targets")?;
    Ok(rows_written_by(n, |out| {
        pair_up(origins, targets, 0, out, |a, b| {
            let (d, wrapped) = sub(b, a);
            // b < a wrapped past 2^384; on a ring of size `limit` it wraps past
            // the limit instead. Both ids are below it, so the sum is in [1, limit).
            if wrapped {
                add(&d, &limit)
            } else {
                d
            }
        })
    }))
}

/// `f(origin, target)` for pairs `start..n`, written into the rows of `out`;
/// a one-id side is used against every row of the other. A loop per shape,
/// so that each is a straight pass over memory with the single id held in
/// registers.
#[inline(always)]
fn pair_up(
    origins: &[u8],
    targets: &[u8],
    start: usize,
    out: &mut [MaybeUninit<u8>],
    f: impl Fn(&Limbs, &Limbs) -> Limbs,
) {
    let n = out.len() / ID_BYTES;
    let skip = start * ID_BYTES;
    let out_rows = out[skip..].chunks_exact_mut(ID_BYTES);
    match (origins.len() == n * ID_BYTES, targets.len() == n * ID_BYTES) {
        (true, true) => {
            for ((a, b), o) in rows(&origins[skip..])
                .zip(rows(&targets[skip..]))
                .zip(out_rows)
            {
                write_row(o, &store(&f(&load(a), &load(b))));
            }
        }
        (false, _) => {
            let a = rows(origins).next().map(load).unwrap_or_default();
            for (b, o) in rows(&targets[skip..]).zip(out_rows) {
                write_row(o, &store(&f(&a, &load(b))));
            }
        }
        (true, false) => {
            let b = rows(targets).next().map(load).unwrap_or_default();
            for (a, o) in rows(&origins[skip..]).zip(out_rows) {
                write_row(o, &store(&f(&load(a), &b)));
            }
        }
    }
}

#[inline(always)]
fn write_row(out: &mut [MaybeUninit<u8>], row: &RingId) {
    for (o, &byte) in out.iter_mut().zip(row) {
        o.write(byte);
    }
}

/// `n` rows of output, all written by `fill`: every caller passes the rows to
/// `pair_up` from some `start` (it writes every row from there to the end),
/// and the SIMD kernel writes every row before `start`.
///
/// Not zeroed first: zeroing 4.8 MB that is about to be overwritten cost a
/// quarter of the time of a 100,000-id batch (measured).
fn rows_written_by(n: usize, fill: impl FnOnce(&mut [MaybeUninit<u8>])) -> Vec<u8> {
    let len = n * ID_BYTES;
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` bytes (see above), within the capacity.
    unsafe { out.set_len(len) };
    out
}

/// `(target - origin) mod 2^384` for `n` pairs (a one-id side repeated).
fn full_ring_distances(origins: &[u8], targets: &[u8], n: usize) -> Vec<u8> {
    rows_written_by(n, |out| {
        let done = full_ring_simd(origins, targets, n, out);
        pair_up(origins, targets, done, out, |a, b| sub(b, a).0);
    })
}

/// The groups of four pairs the AVX-512 kernel can do here; returns how many
/// pairs it wrote (0 on a CPU without AVX-512).
#[cfg(target_arch = "x86_64")]
fn full_ring_simd(origins: &[u8], targets: &[u8], n: usize, out: &mut [MaybeUninit<u8>]) -> usize {
    use avx512::{Side, GROUP_BYTES, GROUP_IDS};
    if !avx512::available() {
        return 0;
    }
    // A one-id side becomes one group of that id four times, read at every
    // step; a side of rows steps through its groups.
    let side = |buf: &[u8]| -> ([u8; GROUP_BYTES], usize) {
        let mut repeated = [0u8; GROUP_BYTES];
        if buf.len() == ID_BYTES && n != 1 {
            for row in repeated.chunks_exact_mut(ID_BYTES) {
                row.copy_from_slice(buf);
            }
            (repeated, 0)
        } else {
            (repeated, GROUP_BYTES)
        }
    };
    let (a_one, a_step) = side(origins);
    let (b_one, b_step) = side(targets);
    fn pick<'a>(buf: &'a [u8], one: &'a [u8; GROUP_BYTES], step: usize) -> Side<'a> {
        let bytes = if step == 0 { one.as_slice() } else { buf };
        Side { bytes, step }
    }
    let groups = n / GROUP_IDS;
    let redo = |first: usize, group_out: &mut [MaybeUninit<u8>]| {
        // The rare group whose borrow ripples: the scalar code, one pair at a
        // time, on copies of the pairs (a one-id side stays one id).
        let take = |buf: &[u8], step: usize| -> Vec<u8> {
            if step == 0 {
                buf.to_vec()
            } else {
                buf[first * ID_BYTES..(first + GROUP_IDS) * ID_BYTES].to_vec()
            }
        };
        pair_up(
            &take(origins, a_step),
            &take(targets, b_step),
            0,
            group_out,
            |a, b| sub(b, a).0,
        );
    };
    // SAFETY: available() confirmed AVX-512F and AVX-512BW on this CPU.
    unsafe {
        avx512::full_ring_groups(
            pick(origins, &a_one, a_step),
            pick(targets, &b_one, b_step),
            out,
            groups,
            redo,
        );
    }
    groups * GROUP_IDS
}

#[cfg(not(target_arch = "x86_64"))]
fn full_ring_simd(_: &[u8], _: &[u8], _: usize, _: &mut [MaybeUninit<u8>]) -> usize {
    0
}

/// The first id in `ids` that is not below `limit`, as an error.
fn check_below(ids: &[u8], limit: &Limbs, what: &'static str) -> Result<(), RingIdError> {
    match rows(ids).position(|id| load(id) >= *limit) {
        None => Ok(()),
        Some(index) => Err(RingIdError::OutOfRange { what, index }),
    }
}

/// Index of the id closest before `key` going clockwise: the one minimising
/// `(key - id) mod 2^384`.
///
/// An id equal to the key is at distance 0, so it wins: "at or before". When
/// several rows hold the winning id, the smallest index is returned. The
/// answer is the same on any smaller ring that holds the key and every id:
/// reducing modulo a smaller limit only changes the distances of the ids past
/// the key, and all of them by the same amount, so the order is unchanged.
pub fn closest_before(ids: &[u8], key: &RingId) -> Result<usize, RingIdError> {
    if count_ids(ids, "ids")? == 0 {
        return Err(RingIdError::NoIds);
    }
    let key = load(key);
    let mut best = (0usize, [u64::MAX; LIMBS]);
    for (i, id) in rows(ids).enumerate() {
        let (d, _) = sub(&key, &load(id));
        // Strictly less: on a tie the earlier index stays.
        if i == 0 || d < best.1 {
            best = (i, d);
        }
    }
    Ok(best.0)
}

#[cfg(target_arch = "x86_64")]
#[path = "chord_avx512.rs"]
mod avx512;

#[cfg(test)]
#[path = "chord_tests.rs"]
mod tests;
