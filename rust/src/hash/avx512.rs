//! SHA-256 of sixteen one-block messages at once with AVX-512: one 32-bit
//! word of each message in each of a register's sixteen lanes, the rounds
//! done on all sixteen side by side.
//!
//! A round is some 17 vector operations for sixteen blocks, with `vprord`
//! for the rotations and `vpternlogd` for the three-input functions. On this
//! project's Zen 4 that is 17-19 ns a block, against 23 ns for SHA-NI however
//! many messages are interleaved (its unit takes a `sha256rnds2` only every
//! other cycle or so). The two do not add up: a kernel that interleaved both
//! (sixteen blocks here, one to four SHA-NI lanes between the rounds) ran at
//! 18.5-19.5 ns a block, no better than this one alone, as they share the
//! vector pipes. So the messages of one block (a txid's second pass, most
//! output scripts) come here, sixteen at a time, and the longer ones go
//! through SHA-NI: here they would need a second scheduler of sixteen lanes
//! for a few ns a block, and a long message left alone at the end of a batch
//! would run in one lane of sixteen instead of at SHA-NI's speed.

use super::message::{one_block, Message, BLOCK_LEN};
use super::sha_ni::K;
use std::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_loadu_si512, _mm512_ror_epi32, _mm512_set1_epi32,
    _mm512_set_epi32, _mm512_shuffle_epi8, _mm512_shuffle_i32x4, _mm512_srli_epi32,
    _mm512_storeu_si512, _mm512_ternarylogic_epi32, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64,
    _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
};
use std::cell::Cell;

pub const LANES: usize = 16;
/// Partial groups of up to this many messages go through SHA-NI.
const SHA_NI_UP_TO: usize = 12;

pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
}

/// The initial hash value H(0) of FIPS 180-4 (5.3.3).
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

// vpternlogd truth tables, inputs (x, y, z) = (0xF0, 0xCC, 0xAA)
const XOR3: i32 = 0x96;
/// Ch(x, y, z) = (x & y) ^ (!x & z)
const CHOOSE: i32 = 0xCA;
/// Maj(x, y, z) = (x & y) ^ (x & z) ^ (y & z)
const MAJORITY: i32 = 0xE8;

/// Rows of sixteen 32-bit words into columns: `rows[i]` word `j` moves to
/// `rows[j]` word `i`.
#[inline(always)]
unsafe fn transpose(rows: &mut [__m512i; 16]) {
    let r = *rows;
    let mut a = [r[0]; 16];
    for k in 0..8 {
        a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    // b[4k + m] holds, in each 128-bit quarter q, word 4q + m of rows
    // 4k..4k + 4: what is left is to regroup the quarters.
    let mut b = [r[0]; 16];
    for k in 0..4 {
        for h in 0..2 {
            b[4 * k + 2 * h] = _mm512_unpacklo_epi64(a[4 * k + h], a[4 * k + 2 + h]);
            b[4 * k + 2 * h + 1] = _mm512_unpackhi_epi64(a[4 * k + h], a[4 * k + 2 + h]);
        }
    }
    let mut c = [r[0]; 16];
    for m in 0..4 {
        for p in 0..2 {
            let (x, y) = (b[m + 8 * p], b[m + 8 * p + 4]);
            c[m + 8 * p] = _mm512_shuffle_i32x4(x, y, 0x88);
            c[m + 8 * p + 4] = _mm512_shuffle_i32x4(x, y, 0xDD);
        }
    }
    for m in 0..4 {
        for p in 0..2 {
            let (x, y) = (c[m + 4 * p], c[m + 4 * p + 8]);
            rows[m + 4 * p] = _mm512_shuffle_i32x4(x, y, 0x88);
            rows[m + 4 * p + 8] = _mm512_shuffle_i32x4(x, y, 0xDD);
        }
    }
}

#[inline(always)]
unsafe fn big_sigma0(x: __m512i) -> __m512i {
    _mm512_ternarylogic_epi32(
        _mm512_ror_epi32(x, 2),
        _mm512_ror_epi32(x, 13),
        _mm512_ror_epi32(x, 22),
        XOR3,
    )
}

#[inline(always)]
unsafe fn big_sigma1(x: __m512i) -> __m512i {
    _mm512_ternarylogic_epi32(
        _mm512_ror_epi32(x, 6),
        _mm512_ror_epi32(x, 11),
        _mm512_ror_epi32(x, 25),
        XOR3,
    )
}

#[inline(always)]
unsafe fn small_sigma0(x: __m512i) -> __m512i {
    _mm512_ternarylogic_epi32(
        _mm512_ror_epi32(x, 7),
        _mm512_ror_epi32(x, 18),
        _mm512_srli_epi32(x, 3),
        XOR3,
    )
}

#[inline(always)]
unsafe fn small_sigma1(x: __m512i) -> __m512i {
    _mm512_ternarylogic_epi32(
        _mm512_ror_epi32(x, 17),
        _mm512_ror_epi32(x, 19),
        _mm512_srli_epi32(x, 10),
        XOR3,
    )
}

/// Round `t` on the working variables named in rotated order: afterwards
/// `$d` holds the new e and `$h` the new a.
macro_rules! round {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $w:expr, $t:expr) => {{
        let wk = _mm512_add_epi32($w, _mm512_set1_epi32(K.0[$t] as i32));
        let t1 = _mm512_add_epi32(
            _mm512_add_epi32($h, big_sigma1($e)),
            _mm512_add_epi32(_mm512_ternarylogic_epi32($e, $f, $g, CHOOSE), wk),
        );
        let t2 = _mm512_add_epi32(
            big_sigma0($a),
            _mm512_ternarylogic_epi32($a, $b, $c, MAJORITY),
        );
        $d = _mm512_add_epi32($d, t1);
        $h = _mm512_add_epi32(t1, t2);
    }};
}

/// Word `t` (16..64) of the schedule into the ring `w` (`w[t % 16]` holds
/// word `t - 16` until it is replaced).
macro_rules! schedule {
    ($w:ident, $t:expr) => {{
        let t = $t;
        $w[t % 16] = _mm512_add_epi32(
            _mm512_add_epi32($w[t % 16], small_sigma0($w[(t + 1) % 16])),
            _mm512_add_epi32($w[(t + 9) % 16], small_sigma1($w[(t + 14) % 16])),
        );
    }};
}

/// Eight rounds from `T` (a multiple of 8), each computing its schedule
/// word first when `T >= 16`. Written out so that every index is a
/// constant and the ring of words stays in registers.
#[inline(always)]
pub(super) unsafe fn eight_rounds<const T: usize>(v: &mut [__m512i; 8], w: &mut [__m512i; 16]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *v;
    if T >= 16 {
        schedule!(w, T);
    }
    round!(a, b, c, d, e, f, g, h, w[T % 16], T);
    if T >= 16 {
        schedule!(w, T + 1);
    }
    round!(h, a, b, c, d, e, f, g, w[(T + 1) % 16], T + 1);
    if T >= 16 {
        schedule!(w, T + 2);
    }
    round!(g, h, a, b, c, d, e, f, w[(T + 2) % 16], T + 2);
    if T >= 16 {
        schedule!(w, T + 3);
    }
    round!(f, g, h, a, b, c, d, e, w[(T + 3) % 16], T + 3);
    if T >= 16 {
        schedule!(w, T + 4);
    }
    round!(e, f, g, h, a, b, c, d, w[(T + 4) % 16], T + 4);
    if T >= 16 {
        schedule!(w, T + 5);
    }
    round!(d, e, f, g, h, a, b, c, w[(T + 5) % 16], T + 5);
    if T >= 16 {
        schedule!(w, T + 6);
    }
    round!(c, d, e, f, g, h, a, b, w[(T + 6) % 16], T + 6);
    if T >= 16 {
        schedule!(w, T + 7);
    }
    round!(b, c, d, e, f, g, h, a, w[(T + 7) % 16], T + 7);
    *v = [a, b, c, d, e, f, g, h];
}

/// The digests of sixteen messages of one block each (`blocks[i]` is the
/// padded block of message `i`), into `out`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (`available()`).
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn one_block_each(blocks: &[[u8; BLOCK_LEN]; LANES], out: &mut [[u8; 32]; LANES]) {
    // a byte reversal in each 32-bit lane: the words are big-endian
    let swap = _mm512_set_epi32(
        0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607,
        0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b,
        0x04050607, 0x00010203,
    );
    let mut w: [__m512i; 16] = std::array::from_fn(|i| {
        _mm512_shuffle_epi8(_mm512_loadu_si512(blocks[i].as_ptr().cast()), swap)
    });
    transpose(&mut w);
    let initial: [__m512i; 8] = std::array::from_fn(|i| _mm512_set1_epi32(H0[i] as i32));
    let mut v = initial;
    eight_rounds::<0>(&mut v, &mut w);
    eight_rounds::<8>(&mut v, &mut w);
    eight_rounds::<16>(&mut v, &mut w);
    eight_rounds::<24>(&mut v, &mut w);
    eight_rounds::<32>(&mut v, &mut w);
    eight_rounds::<40>(&mut v, &mut w);
    eight_rounds::<48>(&mut v, &mut w);
    eight_rounds::<56>(&mut v, &mut w);
    let mut words = [[0u32; LANES]; 8];
    for (i, column) in words.iter_mut().enumerate() {
        _mm512_storeu_si512(
            column.as_mut_ptr().cast(),
            _mm512_add_epi32(v[i], initial[i]),
        );
    }
    for (lane, digest) in out.iter_mut().enumerate() {
        for (i, column) in words.iter().enumerate() {
            digest[4 * i..4 * i + 4].copy_from_slice(&column[lane].to_be_bytes());
        }
    }
}

/// Each 32-byte row replaced by its SHA-256, sixteen at a time; returns how
/// many rows were done (a multiple of sixteen: the rest is the caller's).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (`available()`).
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn rows_in_place(rows: &mut [[u8; 32]]) -> usize {
    let mut blocks = [[0u8; BLOCK_LEN]; LANES];
    for block in blocks.iter_mut() {
        block[32] = 0x80;
        // length 256 bits, big-endian, in the last 8 bytes
        block[62] = 0x01;
    }
    let mut groups = rows.chunks_exact_mut(LANES);
    for group in &mut groups {
        let group: &mut [[u8; 32]; LANES] = group.try_into().unwrap();
        for (block, row) in blocks.iter_mut().zip(group.iter()) {
            block[..32].copy_from_slice(row);
        }
        one_block_each(&blocks, group);
    }
    rows.len() / LANES * LANES
}

/// Messages of one block each, gathered sixteen at a time and hashed as a
/// group; each digest goes to the row its message came with.
pub struct OneBlockMessages<'o> {
    blocks: [[u8; BLOCK_LEN]; LANES],
    rows: [usize; LANES],
    gathered: usize,
    out: &'o [Cell<[u8; 32]>],
}

impl<'o> OneBlockMessages<'o> {
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512BW (`available()`), and SHA-NI
    /// and SSE4.1 (`sha_ni::available()`).
    pub unsafe fn new(out: &'o [Cell<[u8; 32]>]) -> Self {
        Self {
            blocks: [[0; BLOCK_LEN]; LANES],
            rows: [0; LANES],
            gathered: 0,
            out,
        }
    }

    /// Add a message of at most `ONE_BLOCK_MAX` bytes, for row `row`.
    #[inline(always)]
    pub fn push(&mut self, row: usize, message: &Message<'_>) {
        one_block(message, &mut self.blocks[self.gathered]);
        self.rows[self.gathered] = row;
        self.gathered += 1;
        if self.gathered == LANES {
            self.flush();
        }
    }

    /// Hash what is gathered. A group of sixteen costs about as much as
    /// thirteen blocks through the SHA-NI lanes (measured), so a small
    /// partial group goes there instead; in a larger one the unused lanes
    /// hash what they held before, and their digests are dropped.
    pub fn flush(&mut self) {
        let n = self.gathered;
        self.gathered = 0;
        let mut digests = [[0u8; 32]; LANES];
        if n <= SHA_NI_UP_TO {
            // SAFETY: `new`'s caller vouched for SHA-NI (see sha256_batch).
            unsafe { super::sha_ni::one_block_each(&self.blocks[..n], &mut digests[..n]) };
        } else {
            // SAFETY: `new`'s caller vouched for AVX-512F and AVX-512BW.
            unsafe { one_block_each(&self.blocks, &mut digests) };
        }
        for (digest, &row) in digests.iter().zip(&self.rows[..n]) {
            self.out[row].set(*digest);
        }
    }
}
