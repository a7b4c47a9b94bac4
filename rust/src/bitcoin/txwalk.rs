//! A straight-line walk over one transaction that lies whole in a slice: the
//! fast path of the preprocessor (`TxScanner::feed` walks every transaction
//! that fits in the bytes at hand, and only falls back to its phase machine
//! for one that is split across pieces) and the field reader of the columnar
//! parser (`parse`), which hands a visitor each input and output it passes.
//!
//! It reads the layout the phase machine reads (Core's
//! `UnserializeTransaction`), with the same rules: minimal CompactSizes, an
//! empty input vector followed by flag 0x01 for segwit or 0x00 for an empty
//! transaction. It only says *whether* the transaction parses: on `None` the
//! caller runs the phase machine over the same bytes, which finds the typed
//! error and its offset, so there is one definition of every verdict.

use super::txscan::OUTPOINT_LEN;
use crate::compact::{decode_complete, encoded_len_from_marker};

/// What the walk found: where the transaction ends and, for a segwit one,
/// where its witness begins (both offsets into the slice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxEnd {
    pub end: usize,
    pub witness_start: Option<usize>,
}

/// Told of each input and output as the walk passes it; every offset is into
/// the walked slice. The default does nothing, so the preprocessor's walk
/// compiles down to pointer arithmetic.
pub trait Visit {
    #[inline(always)]
    fn input(&mut self, _data: &[u8], _outpoint_at: usize, _script_at: usize, _script_len: usize) {}
    #[inline(always)]
    fn output(&mut self, _data: &[u8], _value_at: usize, _script_at: usize, _script_len: usize) {}
}

/// The visitor of the preprocessor: offsets only.
pub struct SkipAll;
impl Visit for SkipAll {}

#[inline(always)]
fn compact(data: &[u8], p: &mut usize) -> Option<u64> {
    let first = *data.get(*p)?;
    if first < 0xFD {
        *p += 1;
        return Some(u64::from(first));
    }
    let len = encoded_len_from_marker(first);
    let enc = data.get(*p..*p + len)?;
    let value = decode_complete(enc).ok()?;
    *p += len;
    Some(value)
}

/// Advance `p` past `n` bytes that must be in `data`.
#[inline(always)]
fn skip(data: &[u8], p: &mut usize, n: u64) -> Option<()> {
    if n > (data.len() - *p) as u64 {
        return None;
    }
    *p += n as usize;
    Some(())
}

/// The scan is bound by memory latency on blocks of large transactions: each
/// transaction's start is known only once the one before is read, and its
/// fields (the output scripts' lengths come after the first input) often
/// span two cache lines. Asking for the second line with the first overlaps
/// the two misses instead of taking them one after the other.
#[inline(always)]
fn prefetch_second_line(data: &[u8], start: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(line) = data.get(start + 64) {
        // SAFETY: a prefetch of an address inside `data` has no effect but on the cache.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                line as *const u8 as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
}

/// How far ahead of the walk `Prefetcher` asks for lines.
const PREFETCH_AHEAD: usize = 4096;

/// Asks for every cache line a little ahead of a walk that moves forward
/// through a block. On a block of large transactions the walk reads a few
/// bytes and then jumps over a script to the next field: each jump was a
/// miss taken in turn (the hardware prefetcher does not follow jumps), so
/// asking for the lines in the block's order, one prefetch per 64 bytes,
/// turns the walk's latency into bandwidth.
pub struct Prefetcher {
    next: usize,
}

impl Prefetcher {
    pub fn new(from: usize) -> Self {
        Self { next: from }
    }

    /// The walk is at `at`: ask for the lines up to `PREFETCH_AHEAD` past it.
    #[inline(always)]
    pub fn advance(&mut self, data: &[u8], at: usize) {
        let upto = at.saturating_add(PREFETCH_AHEAD).min(data.len());
        while self.next < upto {
            prefetch(data, self.next);
            self.next += 64;
        }
    }
}

#[inline(always)]
fn prefetch(data: &[u8], at: usize) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
    #[cfg(target_arch = "x86_64")]
    if let Some(line) = data.get(at) {
        // SAFETY: a prefetch of an address inside `data` has no effect but on the cache.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                line as *const u8 as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
}

/// Walk the transaction at `data[start..]`; `None` if it does not parse
/// within `data` (truncated here, or malformed: ask the phase machine which).
#[inline]
pub fn walk_tx<V: Visit>(
    data: &[u8],
    start: usize,
    allow_witness: bool,
    visit: &mut V,
) -> Option<TxEnd> {
    prefetch_second_line(data, start);
    let mut p = start;
    skip(data, &mut p, 4)?; // version
    let mut n_inputs = compact(data, &mut p)?;
    let mut segwit = false;
    if n_inputs == 0 && allow_witness {
        let flag = *data.get(p)?;
        p += 1;
        match flag {
            // no inputs and no outputs: the "flag" was the output count
            0 => {
                skip(data, &mut p, 4)?;
                return Some(TxEnd {
                    end: p,
                    witness_start: None,
                });
            }
            1 => segwit = true,
            _ => return None,
        }
        n_inputs = compact(data, &mut p)?;
    }
    for _ in 0..n_inputs {
        let outpoint = p;
        skip(data, &mut p, OUTPOINT_LEN)?;
        let len = compact(data, &mut p)?;
        let script = p;
        skip(data, &mut p, len)?;
        skip(data, &mut p, 4)?; // sequence
        visit.input(data, outpoint, script, len as usize);
    }
    let n_outputs = compact(data, &mut p)?;
    for _ in 0..n_outputs {
        let value = p;
        skip(data, &mut p, 8)?;
        let len = compact(data, &mut p)?;
        let script = p;
        skip(data, &mut p, len)?;
        visit.output(data, value, script, len as usize);
    }
    let mut witness_start = None;
    if segwit {
        witness_start = Some(p);
        for _ in 0..n_inputs {
            let items = compact(data, &mut p)?;
            for _ in 0..items {
                let len = compact(data, &mut p)?;
                skip(data, &mut p, len)?;
            }
        }
    }
    skip(data, &mut p, 4)?; // lock time
    Some(TxEnd {
        end: p,
        witness_start,
    })
}
