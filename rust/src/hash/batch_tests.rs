//! The batch hashes against `sha2`, one message at a time: every length up to
//! 300 (all the padding cases: data ending before, at and after byte 55 of a
//! block), random lengths up to 100 KiB, every batch size up to 17 (full and
//! partial groups of lanes), the three-slice form cut at every place, and
//! batches mixing very different lengths.

use super::*;
use crate::hash::message::{MessageBlocks, BLOCK_LEN};

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn expected(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn expected_double(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

fn batch_of(messages: &[Message<'_>]) -> Vec<[u8; 32]> {
    let mut out = vec![[0u8; 32]; messages.len()];
    sha256_batch(messages.iter().copied(), &mut out);
    out
}

/// Every lane count the SHA-NI scheduler can run with, on this CPU (none
/// without SHA-NI: then `sha256_batch` is `sha2` itself).
fn every_lane_count(messages: &[Message<'_>]) -> Vec<Vec<[u8; 32]>> {
    let mut results = vec![batch_of(messages)];
    #[cfg(target_arch = "x86_64")]
    if crate::hash::sha_ni::available() {
        macro_rules! lanes {
            ($n:literal) => {{
                let mut out = vec![[0u8; 32]; messages.len()];
                let cells = std::cell::Cell::from_mut(&mut out[..]).as_slice_of_cells();
                // SAFETY: available() confirmed SHA-NI and SSE4.1.
                unsafe {
                    crate::hash::sha_ni::sha256_many::<_, $n>(
                        messages.iter().copied().enumerate(),
                        cells,
                    )
                };
                out
            }};
        }
        results.extend([lanes!(1), lanes!(2), lanes!(3), lanes!(4)]);
    }
    results
}

#[test]
fn every_length_up_to_300_matches_sha2() {
    let data = Rng(1).bytes(300);
    let messages: Vec<Message<'_>> = (0..=300).map(|n| Message::new(&data[..n])).collect();
    let want: Vec<[u8; 32]> = (0..=300).map(|n| expected(&data[..n])).collect();
    for got in every_lane_count(&messages) {
        assert_eq!(got, want);
    }
}

#[test]
fn random_lengths_up_to_100_kib_match_sha2() {
    let mut rng = Rng(2);
    let data = rng.bytes(100 << 10);
    let spans: Vec<(usize, usize)> = (0..60)
        .map(|_| {
            let len = rng.below(data.len() + 1);
            let start = rng.below(data.len() - len + 1);
            (start, start + len)
        })
        .collect();
    let messages: Vec<Message<'_>> = spans
        .iter()
        .map(|&(a, b)| Message::new(&data[a..b]))
        .collect();
    let want: Vec<[u8; 32]> = spans.iter().map(|&(a, b)| expected(&data[a..b])).collect();
    for got in every_lane_count(&messages) {
        assert_eq!(got, want);
    }
}

#[test]
fn every_batch_size_up_to_17_matches_sha2() {
    let mut rng = Rng(3);
    let data = rng.bytes(4096);
    for count in 0..=17 {
        let spans: Vec<(usize, usize)> = (0..count)
            .map(|_| {
                let start = rng.below(2048);
                (start, start + rng.below(2048))
            })
            .collect();
        let messages: Vec<Message<'_>> = spans
            .iter()
            .map(|&(a, b)| Message::new(&data[a..b]))
            .collect();
        let want: Vec<[u8; 32]> = spans.iter().map(|&(a, b)| expected(&data[a..b])).collect();
        for got in every_lane_count(&messages) {
            assert_eq!(got, want, "{count} messages");
        }
        let twice: Vec<[u8; 32]> = spans
            .iter()
            .map(|&(a, b)| expected_double(&data[a..b]))
            .collect();
        let mut rows = want.clone();
        sha256_rows_in_place(&mut rows);
        #[cfg(target_arch = "x86_64")]
        if crate::hash::avx512::available() {
            let mut by_avx = want.clone();
            // SAFETY: available() confirmed AVX-512F and AVX-512BW.
            let done = unsafe { crate::hash::avx512::rows_in_place(&mut by_avx) };
            assert_eq!(done, count / 16 * 16);
            assert_eq!(by_avx[..done], twice[..done], "{count} rows by AVX-512");
        }
        assert_eq!(rows, twice, "{count} rows in place");
        let mut out = vec![[0u8; 32]; count];
        sha256d_batch(messages.iter().copied(), &mut out);
        assert_eq!(out, twice, "{count} double");
    }
}

#[test]
fn three_slices_hash_as_their_concatenation() {
    let data = Rng(4).bytes(200);
    let mut messages = Vec::new();
    let mut want = Vec::new();
    // every pair of cuts of a 200-byte message, in steps that hit the block
    // edges (0, 55, 56, 63, 64, 65, 128) and many places between
    let cuts: Vec<usize> = (0..=200)
        .filter(|c| c % 7 == 0 || [55, 56, 63, 64, 65, 128].contains(c))
        .collect();
    for &a in &cuts {
        for &b in cuts.iter().filter(|&&b| b >= a) {
            messages.push(Message::from_parts(&data[..a], &data[a..b], &data[b..]));
            want.push(expected(&data));
        }
    }
    // and parts that skip some bytes: version + body + lock time of a segwit txid
    let skipped = [&data[..4], &data[6..150], &data[196..]].concat();
    messages.push(Message::from_parts(&data[..4], &data[6..150], &data[196..]));
    want.push(expected(&skipped));
    for got in every_lane_count(&messages) {
        assert_eq!(got, want);
    }
}

#[test]
fn very_different_lengths_share_one_batch() {
    let mut rng = Rng(5);
    let data = rng.bytes(300_000);
    // a long message among many short ones, in every position
    let mut lens: Vec<usize> = (0..40).map(|_| rng.below(120)).collect();
    lens[0] = 250_000;
    lens[17] = 100_000;
    lens[39] = 64 * 1000;
    lens.push(0);
    let messages: Vec<Message<'_>> = lens.iter().map(|&n| Message::new(&data[..n])).collect();
    let want: Vec<[u8; 32]> = lens.iter().map(|&n| expected(&data[..n])).collect();
    for got in every_lane_count(&messages) {
        assert_eq!(got, want);
    }
}

#[test]
fn blocks_are_the_bytes_then_the_padding() {
    let data = Rng(6).bytes(300);
    for len in 0..300 {
        for cut in [0, len / 3, len] {
            let mut blocks =
                MessageBlocks::new(Message::from_parts(&data[..cut], &data[cut..len], &[]));
            let mut all = Vec::new();
            while !blocks.finished() {
                let block = blocks.next_block();
                // SAFETY: next_block points at 64 readable bytes until the next call.
                all.extend_from_slice(unsafe { std::slice::from_raw_parts(block, BLOCK_LEN) });
            }
            let mut want = data[..len].to_vec();
            want.push(0x80);
            while want.len() % BLOCK_LEN != BLOCK_LEN - 8 {
                want.push(0);
            }
            want.extend_from_slice(&(len as u64 * 8).to_be_bytes());
            assert_eq!(all, want, "length {len}, cut at {cut}");
        }
    }
}

#[test]
fn the_known_digests_come_out() {
    // FIPS 180-2 appendix B.1 and B.2
    let abc = hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let two = hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    let messages = [Message::new(b"abc"), Message::new(long)];
    assert_eq!(batch_of(&messages), vec![abc, two]);
}

fn hex(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (k, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * k..2 * k + 2], 16).unwrap();
    }
    out
}

/// Throughput of each lane count against `sha2` one message at a time
/// (`cargo test --release --lib lane_counts_timed -- --ignored --nocapture`).
#[test]
#[ignore]
fn lane_counts_timed() {
    use std::time::Instant;
    let mut rng = Rng(7);
    let data = rng.bytes(24 << 20);
    for (what, lo, hi) in [
        ("120-350 B", 120, 350),
        ("22-34 B", 22, 35),
        ("4-8 KiB", 4096, 8192),
    ] {
        let mut spans = Vec::new();
        let mut at = 0;
        while at + hi < data.len() {
            let len = lo + rng.below(hi - lo);
            spans.push((at, at + len));
            at += len;
        }
        let messages: Vec<Message<'_>> = spans
            .iter()
            .map(|&(a, b)| Message::new(&data[a..b]))
            .collect();
        let mut out = vec![[0u8; 32]; messages.len()];
        let time = |f: &mut dyn FnMut(&mut [[u8; 32]])| {
            let mut best = f64::MAX;
            let mut out = vec![[0u8; 32]; messages.len()];
            for _ in 0..5 {
                let t = Instant::now();
                f(&mut out);
                best = best.min(t.elapsed().as_secs_f64());
            }
            best
        };
        let sha2 = time(&mut |out| {
            for (m, row) in messages.iter().zip(out.iter_mut()) {
                *row = one_by_one(m);
            }
        });
        println!(
            "{what}: {} messages, {} MB; sha2 one by one {:.2} ms",
            messages.len(),
            at >> 20,
            sha2 * 1e3
        );
        macro_rules! lanes {
            ($n:literal) => {{
                let t = time(&mut |out| unsafe {
                    let cells = std::cell::Cell::from_mut(out).as_slice_of_cells();
                    crate::hash::sha_ni::sha256_many::<_, $n>(
                        messages.iter().copied().enumerate(),
                        cells,
                    )
                });
                println!("  {} lanes: {:.2} ms ({:.2}x)", $n, t * 1e3, sha2 / t);
            }};
        }
        lanes!(1);
        lanes!(2);
        lanes!(3);
        lanes!(4);
        let batch = time(&mut |out| sha256_batch(messages.iter().copied(), out));
        println!(
            "  sha256_batch: {:.2} ms ({:.2}x)",
            batch * 1e3,
            sha2 / batch
        );
        sha256_batch(messages.iter().copied(), &mut out);
        let rows = time(&mut |out| sha256_rows_in_place(out));
        let rows_sha2 = time(&mut |out| {
            for row in out.iter_mut() {
                *row = Sha256::digest(*row).into();
            }
        });
        let rows_avx = time(&mut |out| unsafe {
            crate::hash::avx512::rows_in_place(out);
        });
        println!(
            "  rows in place: {:.2} ms, AVX-512 {:.2} ms, sha2 {:.2} ms",
            rows * 1e3,
            rows_avx * 1e3,
            rows_sha2 * 1e3
        );
    }
}
