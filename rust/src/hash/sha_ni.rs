//! SHA-256 of many independent messages on the SHA-NI instructions, several
//! messages at once.
//!
//! One message cannot go faster than the latency of `sha256rnds2` (two
//! rounds, each pair waiting on the one before: 32 in a row per block), but
//! the unit accepts a new one before the last is done, so the rounds of
//! `LANES` messages are interleaved instruction by instruction and overlap.
//! The scheduler keeps every lane busy: a lane whose message is done takes the
//! next one, so messages of very different lengths share the lanes until the
//! last few run alone.
//!
//! The state lives the whole message in the form the instructions want: one
//! register with words (A, B, E, F), one with (C, D, G, H), highest lane
//! first.

use super::message::{Message, MessageBlocks, BLOCK_LEN};
use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_loadu_si128, _mm_set_epi32,
    _mm_set_epi64x, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32,
    _mm_shuffle_epi32, _mm_shuffle_epi8, _mm_storeu_si128,
};
use std::cell::Cell;

/// How many messages are hashed at once. Measured on this project's AMD EPYC
/// (Zen 4) on 4-8 KiB messages, per 64-byte block: 35 ns with one lane (the
/// rounds' latency), 28 with two, 23 with three, 23-24 with four (the SHA
/// instructions only reach xmm0-15, and four lanes' words and states spill).
/// `cargo test --release --lib lane_counts_timed -- --ignored --nocapture`.
pub const LANES: usize = 3;
const _: () = assert!(LANES >= 1 && LANES <= 4);

/// The round constants of FIPS 180-4 (section 4.2.2): the first 32 bits of
/// the fractional parts of the cube roots of the first 64 primes.
#[repr(align(16))]
pub(super) struct RoundConstants(pub(super) [u32; 64]);
pub(super) static K: RoundConstants = RoundConstants([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/// The state of one message: (A, B, E, F) and (C, D, G, H).
pub(super) type State = [__m128i; 2];

pub fn available() -> bool {
    // The macro caches the CPUID answer, so this costs a load per batch.
    std::is_x86_feature_detected!("sha") && std::is_x86_feature_detected!("sse4.1")
}

/// The initial hash value H(0) of FIPS 180-4 (5.3.3), as (A, B, E, F) and
/// (C, D, G, H).
#[inline(always)]
pub(super) unsafe fn initial_state() -> State {
    [
        _mm_set_epi32(
            0x6a09e667,
            0xbb67ae85u32 as i32,
            0x510e527f,
            0x9b05688cu32 as i32,
        ),
        _mm_set_epi32(0x3c6ef372, 0xa54ff53au32 as i32, 0x1f83d9ab, 0x5be0cd19),
    ]
}

/// Big-endian words from bytes (and back): a byte reversal in each 32-bit lane.
#[inline(always)]
unsafe fn byte_swap_mask() -> __m128i {
    _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203)
}

/// The digest (A..H as big-endian bytes) of a final state.
#[inline(always)]
unsafe fn store_digest(state: &State, out: &mut [u8; 32]) {
    // (A, B, E, F) is [F, E, B, A] from lane 0 up; reversed: [A, B, E, F].
    let abef = _mm_shuffle_epi32(state[0], 0x1B);
    let cdgh = _mm_shuffle_epi32(state[1], 0x1B);
    // [A, B, C, D] and [E, F, G, H]
    let abcd = _mm_blend_epi16(abef, _mm_alignr_epi8(cdgh, cdgh, 8), 0xF0);
    let efgh = _mm_blend_epi16(_mm_alignr_epi8(abef, abef, 8), cdgh, 0xF0);
    let swap = byte_swap_mask();
    _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_shuffle_epi8(abcd, swap));
    _mm_storeu_si128(
        out.as_mut_ptr().add(16).cast(),
        _mm_shuffle_epi8(efgh, swap),
    );
}

/// Four rounds `4i..4i + 4` for every lane: `J` (= i % 4) is which of the
/// four schedule registers holds words `4i..4i + 4`, computed here from the
/// three before it when `SCHEDULE` (rounds 16-63). Const parameters, so that
/// every register index is known and the words stay in registers.
#[inline(always)]
pub(super) unsafe fn four_rounds<const N: usize, const J: usize, const SCHEDULE: bool>(
    states: &mut [State; N],
    w: &mut [[__m128i; 4]; N],
    i: usize,
) {
    let k = _mm_loadu_si128(K.0.as_ptr().add(4 * i).cast());
    for l in 0..N {
        let w = &mut w[l];
        if SCHEDULE {
            let before = w[(J + 3) % 4];
            let carry = _mm_alignr_epi8(before, w[(J + 2) % 4], 4);
            let t = _mm_add_epi32(_mm_sha256msg1_epu32(w[J], w[(J + 1) % 4]), carry);
            w[J] = _mm_sha256msg2_epu32(t, before);
        }
        let wk = _mm_add_epi32(w[J], k);
        let state = &mut states[l];
        state[1] = _mm_sha256rnds2_epu32(state[1], state[0], wk);
        state[0] = _mm_sha256rnds2_epu32(state[0], state[1], _mm_shuffle_epi32(wk, 0x0E));
    }
}

/// The message words of one block for each lane, big-endian.
#[inline(always)]
pub(super) unsafe fn load_words<const N: usize>(blocks: &[*const u8; N]) -> [[__m128i; 4]; N] {
    let swap = byte_swap_mask();
    let mut w = [[swap; 4]; N];
    for l in 0..N {
        for (j, word) in w[l].iter_mut().enumerate() {
            let bytes = _mm_loadu_si128(blocks[l].add(16 * j).cast());
            *word = _mm_shuffle_epi8(bytes, swap);
        }
    }
    w
}

/// One block into each of `N` states, the lanes' rounds interleaved.
///
/// # Safety
/// SHA-NI and SSE4.1 must be present; each pointer must address 64 readable bytes.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[inline]
unsafe fn compress<const N: usize>(states: &mut [State; N], blocks: &[*const u8; N]) {
    let saved = *states;
    let mut w = load_words(blocks);
    four_rounds::<N, 0, false>(states, &mut w, 0);
    four_rounds::<N, 1, false>(states, &mut w, 1);
    four_rounds::<N, 2, false>(states, &mut w, 2);
    four_rounds::<N, 3, false>(states, &mut w, 3);
    for q in 1..4 {
        four_rounds::<N, 0, true>(states, &mut w, 4 * q);
        four_rounds::<N, 1, true>(states, &mut w, 4 * q + 1);
        four_rounds::<N, 2, true>(states, &mut w, 4 * q + 2);
        four_rounds::<N, 3, true>(states, &mut w, 4 * q + 3);
    }
    add_states(states, &saved);
}

#[inline(always)]
pub(super) unsafe fn add_states<const N: usize>(states: &mut [State; N], saved: &[State; N]) {
    for l in 0..N {
        states[l][0] = _mm_add_epi32(states[l][0], saved[l][0]);
        states[l][1] = _mm_add_epi32(states[l][1], saved[l][1]);
    }
}

/// A message being hashed in a lane: which output row it fills, its blocks
/// and its running state.
struct Lane<'a> {
    row: usize,
    blocks: MessageBlocks<'a>,
    state: State,
}

/// One block of each of the lanes `order[..N]`.
#[inline(always)]
unsafe fn step<const N: usize, const MAX: usize>(
    lanes: &mut [Lane<'_>; MAX],
    order: &[usize; MAX],
) {
    let mut blocks = [std::ptr::null(); N];
    let mut states = [lanes[0].state; N];
    for l in 0..N {
        let lane = &mut lanes[order[l]];
        blocks[l] = lane.blocks.next_block();
        states[l] = lane.state;
    }
    compress::<N>(&mut states, &blocks);
    for l in 0..N {
        lanes[order[l]].state = states[l];
    }
}

/// SHA-256 of each `(row, message)` into `out[row]`. `MAX` lanes, at most 4.
///
/// # Safety
/// SHA-NI and SSE4.1 must be present (`available()`).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn sha256_many<'a, I, const MAX: usize>(mut messages: I, out: &[Cell<[u8; 32]>])
where
    I: Iterator<Item = (usize, Message<'a>)>,
{
    const { assert!(MAX >= 1 && MAX <= 4) };
    let mut lanes: [Lane<'a>; MAX] = std::array::from_fn(|_| Lane {
        row: 0,
        blocks: MessageBlocks::default(),
        state: initial_state(),
    });
    // The lanes that hold a message with blocks left are order[..live]. A
    // lane keeps its place: when its message is done it takes the next one
    // where it is, and only leaves `order` once there are no more.
    let mut order: [usize; MAX] = std::array::from_fn(|l| l);
    let mut live = 0;
    while live < MAX {
        let Some((row, message)) = messages.next() else {
            break;
        };
        lanes[live].row = row;
        lanes[live].blocks.reset(message);
        live += 1;
    }
    loop {
        match live {
            0 => return,
            1 => step::<1, MAX>(&mut lanes, &order),
            2 => step::<2, MAX>(&mut lanes, &order),
            3 => step::<3, MAX>(&mut lanes, &order),
            _ => step::<4, MAX>(&mut lanes, &order),
        }
        let mut l = 0;
        while l < live {
            let lane = &mut lanes[order[l]];
            if !lane.blocks.finished() {
                l += 1;
                continue;
            }
            let mut digest = [0u8; 32];
            store_digest(&lane.state, &mut digest);
            out[lane.row].set(digest);
            lane.state = initial_state();
            if let Some((row, message)) = messages.next() {
                lane.row = row;
                lane.blocks.reset(message);
                l += 1;
            } else {
                live -= 1;
                order.swap(l, live);
            }
        }
    }
}

/// SHA-256 of each 32-byte row, in place: the second pass of a double
/// SHA-256. Every message is one block (the row, 0x80, zeros, length 256),
/// so they go through the lanes in groups with no scheduling.
///
/// # Safety
/// SHA-NI and SSE4.1 must be present (`available()`).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn sha256_rows_in_place(rows: &mut [[u8; 32]]) {
    let mut block = [0u8; BLOCK_LEN];
    block[32] = 0x80;
    // length 256 bits, big-endian, in the last 8 bytes
    block[62] = 0x01;
    let mut blocks = [block; LANES];
    for group in rows.chunks_mut(LANES) {
        for (block, row) in blocks.iter_mut().zip(group.iter()) {
            block[..32].copy_from_slice(row);
        }
        one_block_each(&blocks[..group.len()], group);
    }
}

/// The digests of messages of one padded block each, into `out`.
///
/// # Safety
/// SHA-NI and SSE4.1 must be present (`available()`).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn one_block_each(blocks: &[[u8; BLOCK_LEN]], out: &mut [[u8; 32]]) {
    for (group, digests) in blocks.chunks(LANES).zip(out.chunks_mut(LANES)) {
        match group.len() {
            1 => one_block_group::<1>(group, digests),
            2 => one_block_group::<2>(group, digests),
            3 => one_block_group::<3>(group, digests),
            _ => one_block_group::<4>(group, digests),
        }
    }
}

#[inline(always)]
unsafe fn one_block_group<const N: usize>(blocks: &[[u8; BLOCK_LEN]], out: &mut [[u8; 32]]) {
    let pointers: [*const u8; N] = std::array::from_fn(|l| blocks[l].as_ptr());
    let mut states = [initial_state(); N];
    compress::<N>(&mut states, &pointers);
    for (state, digest) in states.iter().zip(out.iter_mut()) {
        store_digest(state, digest);
    }
}
