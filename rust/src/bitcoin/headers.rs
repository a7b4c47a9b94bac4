//! Block headers: hashing, compact `bits` <-> 256-bit target, proof of work,
//! and batch checks of linkage and proof of work.
//!
//! 256-bit numbers are `U256`: four little-endian u64 limbs, enough for the
//! comparisons and the shifts of Core's `arith_uint256::SetCompact`/`GetCompact`.

use crate::error::KernelError;
use crate::hash::sha256d;
use std::fmt;

pub const HEADER_LEN: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct U256([u64; 4]);

impl U256 {
    pub const ZERO: U256 = U256([0; 4]);

    /// From 32 little-endian bytes (how a hash is compared with a target).
    pub fn from_le_bytes(b: &[u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *limb = u64::from_le_bytes(w);
        }
        U256(limbs)
    }

    pub fn from_be_bytes(b: &[u8; 32]) -> Self {
        let mut le = *b;
        le.reverse();
        Self::from_le_bytes(&le)
    }

    pub fn to_be_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in self.0.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        out.reverse();
        out
    }

    pub fn from_u64(v: u64) -> Self {
        U256([v, 0, 0, 0])
    }

    pub fn is_zero(self) -> bool {
        self.0 == [0; 4]
    }

    fn bits(self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }

    pub fn shift_left(self, n: u32) -> Self {
        if n >= 256 {
            return Self::ZERO;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for i in (words..4).rev() {
            let src = i - words;
            out[i] = self.0[src] << bits;
            if bits > 0 && src > 0 {
                out[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        U256(out)
    }

    pub fn shift_right(self, n: u32) -> Self {
        if n >= 256 {
            return Self::ZERO;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate().take(4 - words) {
            let src = i + words;
            *slot = self.0[src] >> bits;
            if bits > 0 && src + 1 < 4 {
                *slot |= self.0[src + 1] << (64 - bits);
            }
        }
        U256(out)
    }

    fn low_u64(self) -> u64 {
        self.0[0]
    }
}

fn cmp_u256(a: &U256, b: &U256) -> std::cmp::Ordering {
    a.0.iter().rev().cmp(b.0.iter().rev())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    BadLength { len: usize },
    NegativeTarget { bits: u32 },
    OverflowTarget { bits: u32 },
    ZeroTarget { bits: u32 },
    AbovePowLimit { bits: u32 },
    InsufficientWork,
    DoesNotConnect,
}

impl HeaderError {
    /// A short reason code, stable for callers to match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadLength { .. } => "bad-length",
            Self::NegativeTarget { .. } => "bits-negative",
            Self::OverflowTarget { .. } => "bits-overflow",
            Self::ZeroTarget { .. } => "bits-zero",
            Self::AbovePowLimit { .. } => "bits-above-pow-limit",
            Self::InsufficientWork => "high-hash",
            Self::DoesNotConnect => "prev-blk-not-found",
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength { len } => {
                write!(f, "headers buffer of {len} bytes is not a multiple of 80")
            }
            Self::NegativeTarget { bits } => {
                write!(f, "bits 0x{bits:08x} encode a negative target")
            }
            Self::OverflowTarget { bits } => write!(f, "bits 0x{bits:08x} overflow 256 bits"),
            Self::ZeroTarget { bits } => write!(f, "bits 0x{bits:08x} encode a zero target"),
            Self::AbovePowLimit { bits } => {
                write!(f, "bits 0x{bits:08x} are easier than the network's limit")
            }
            Self::InsufficientWork => write!(f, "hash is above the target (proof of work fails)"),
            Self::DoesNotConnect => write!(f, "previous-block hash does not match"),
        }
    }
}

impl KernelError for HeaderError {
    fn py_class(&self) -> &'static str {
        "HeaderError"
    }
}

/// Double SHA-256 of an 80-byte header (internal byte order).
pub fn hash_header(header: &[u8]) -> Result<[u8; 32], HeaderError> {
    if header.len() != HEADER_LEN {
        return Err(HeaderError::BadLength { len: header.len() });
    }
    Ok(sha256d(header))
}

/// Hashes of a buffer of consecutive 80-byte headers.
pub fn hash_headers(buf: &[u8]) -> Result<Vec<[u8; 32]>, HeaderError> {
    if !buf.len().is_multiple_of(HEADER_LEN) {
        return Err(HeaderError::BadLength { len: buf.len() });
    }
    Ok(buf.chunks_exact(HEADER_LEN).map(sha256d).collect())
}

/// Core's `SetCompact`: the target that compact `bits` encode, rejecting the
/// negative, overflowing and zero encodings that `CheckProofOfWork` rejects.
pub fn bits_to_target(bits: u32) -> Result<U256, HeaderError> {
    let exponent = bits >> 24;
    // As Core: the mantissa is shifted first for small exponents, and the sign
    // and overflow tests look at what is left of it.
    let word = if exponent <= 3 {
        (bits & 0x007f_ffff) >> (8 * (3 - exponent))
    } else {
        bits & 0x007f_ffff
    };
    if word != 0 && bits & 0x0080_0000 != 0 {
        return Err(HeaderError::NegativeTarget { bits });
    }
    if word != 0
        && (exponent > 34 || (word > 0xff && exponent > 33) || (word > 0xffff && exponent > 32))
    {
        return Err(HeaderError::OverflowTarget { bits });
    }
    let m = U256::from_u64(u64::from(word));
    let target = if exponent <= 3 {
        m
    } else {
        m.shift_left(8 * (exponent - 3))
    };
    if target.is_zero() {
        return Err(HeaderError::ZeroTarget { bits });
    }
    Ok(target)
}

/// Core's `GetCompact`: the compact encoding of a target (rounded down).
pub fn target_to_bits(target: U256) -> u32 {
    let mut size = target.bits().div_ceil(8);
    let mut compact = if size <= 3 {
        (target.low_u64() << (8 * (3 - size))) as u32
    } else {
        target.shift_right(8 * (size - 3)).low_u64() as u32
    };
    // The 0x00800000 bit is the sign: if the mantissa would set it, shift it
    // down a byte and raise the exponent.
    if compact & 0x0080_0000 != 0 {
        compact >>= 8;
        size += 1;
    }
    compact | (size << 24)
}

fn header_bits(header: &[u8]) -> u32 {
    u32::from_le_bytes([header[72], header[73], header[74], header[75]])
}

/// Proof of work of one header with its hash: the target from its own bits,
/// no easier than `pow_limit`, and the hash at or below it.
pub fn check_pow(hash: &[u8; 32], bits: u32, pow_limit: Option<U256>) -> Result<(), HeaderError> {
    let target = bits_to_target(bits)?;
    if let Some(limit) = pow_limit {
        if cmp_u256(&target, &limit).is_gt() {
            return Err(HeaderError::AbovePowLimit { bits });
        }
    }
    if cmp_u256(&U256::from_le_bytes(hash), &target).is_gt() {
        return Err(HeaderError::InsufficientWork);
    }
    Ok(())
}

/// Result of a batch check: every header's hash, and the first failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCheck {
    pub hashes: Vec<[u8; 32]>,
    pub failure: Option<(usize, HeaderError)>,
}

/// Check a batch of consecutive headers: each one's previous-hash must be the
/// hash of the one before (the first one's must be `prev_hash`, if given), and
/// each must pass proof of work. Hashes are returned for all of them, so a
/// caller storing the good prefix does not hash them again.
pub fn check_headers(
    buf: &[u8],
    prev_hash: Option<[u8; 32]>,
    pow_limit: Option<U256>,
) -> Result<BatchCheck, HeaderError> {
    let hashes = hash_headers(buf)?;
    let mut failure = None;
    for (i, header) in buf.chunks_exact(HEADER_LEN).enumerate() {
        let expected_prev = if i == 0 {
            prev_hash
        } else {
            Some(hashes[i - 1])
        };
        if let Some(prev) = expected_prev {
            if header[4..36] != prev {
                failure = Some((i, HeaderError::DoesNotConnect));
                break;
            }
        }
        if let Err(e) = check_pow(&hashes[i], header_bits(header), pow_limit) {
            failure = Some((i, e));
            break;
        }
    }
    Ok(BatchCheck { hashes, failure })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn genesis_hash_and_pow() {
        let h = unhex(GENESIS);
        let mut hash = hash_header(&h).unwrap();
        check_pow(&hash, header_bits(&h), None).unwrap();
        hash.reverse();
        let shown: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            shown,
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
    }

    #[test]
    fn compact_round_trips_and_core_edge_cases() {
        for bits in [
            0x1d00ffffu32,
            0x207fffff,
            0x1b0404cb,
            0x05009234,
            0x04123456,
        ] {
            assert_eq!(
                target_to_bits(bits_to_target(bits).unwrap()),
                bits,
                "{bits:x}"
            );
        }
        // Core's arith_uint256 tests: 0x04923456 is negative, 0xff123456 overflows.
        assert!(matches!(
            bits_to_target(0x04923456),
            Err(HeaderError::NegativeTarget { .. })
        ));
        assert!(matches!(
            bits_to_target(0xff123456),
            Err(HeaderError::OverflowTarget { .. })
        ));
        assert!(matches!(
            bits_to_target(0x01003456),
            Err(HeaderError::ZeroTarget { .. })
        ));
        // 0x1d00ffff = 0xffff << 208
        assert_eq!(
            bits_to_target(0x1d00ffff).unwrap(),
            U256::from_u64(0xffff).shift_left(208)
        );
    }

    #[test]
    fn batch_reports_first_failure() {
        let g = unhex(GENESIS);
        let mut buf = g.clone();
        buf.extend_from_slice(&g); // second genesis does not link to the first
        let r = check_headers(&buf, None, None).unwrap();
        assert_eq!(r.hashes.len(), 2);
        assert_eq!(r.failure, Some((1, HeaderError::DoesNotConnect)));
        let mut tampered = g.clone();
        tampered[0] ^= 1;
        let r = check_headers(&tampered, None, None).unwrap();
        assert_eq!(r.failure, Some((0, HeaderError::InsufficientWork)));
    }

    #[test]
    fn shifts_cross_limbs() {
        let one = U256::from_u64(1);
        assert_eq!(one.shift_left(255).shift_right(255), one);
        assert_eq!(one.shift_left(64).0, [0, 1, 0, 0]);
        assert_eq!(
            U256::from_u64(0xff00).shift_left(60).shift_right(60),
            U256::from_u64(0xff00)
        );
    }
}
