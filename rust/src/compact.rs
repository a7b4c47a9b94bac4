//! CompactSize, Bitcoin's variable-length unsigned integer.
//!
//! One byte below 0xFD; otherwise a marker byte (0xFD, 0xFE, 0xFF) then a
//! little-endian u16, u32 or u64. Like Bitcoin Core's `ReadCompactSize`
//! (serialize.h) we reject non-minimal encodings ("non-canonical ReadCompactSize()")
//! and values above a caller-given limit, before the caller allocates anything
//! for them.

use crate::error::KernelError;
use std::fmt;

/// Core's `MAX_SIZE` (serialize.h): the default ceiling for a size read from the wire.
pub const MAX_SIZE: u64 = 0x0200_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactError {
    /// Fewer bytes than the encoding needs; `needed` is its full length.
    Truncated { needed: usize, have: usize },
    /// The value fits a shorter encoding (Core rejects these).
    NonMinimal { value: u64, len: usize },
    /// The value is above the caller's limit.
    TooLarge { value: u64, limit: u64 },
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, have } => {
                write!(
                    f,
                    "truncated CompactSize: needs {needed} bytes, have {have}"
                )
            }
            Self::NonMinimal { value, len } => {
                write!(f, "non-minimal CompactSize: {value} encoded in {len} bytes")
            }
            Self::TooLarge { value, limit } => {
                write!(f, "CompactSize {value} exceeds the limit {limit}")
            }
        }
    }
}

impl KernelError for CompactError {
    fn py_class(&self) -> &'static str {
        "CompactSizeError"
    }
}

/// Length of the encoding that starts with `first` (1, 3, 5 or 9).
#[inline]
pub fn encoded_len_from_marker(first: u8) -> usize {
    match first {
        0xFD => 3,
        0xFE => 5,
        0xFF => 9,
        _ => 1,
    }
}

/// Length of the minimal encoding of `value`.
#[inline]
pub fn encoded_len(value: u64) -> usize {
    match value {
        0..=0xFC => 1,
        0xFD..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

/// Decode a CompactSize at the start of `buf` whose full encoding is present.
/// Returns the value and the number of bytes it took.
#[inline]
pub fn read(buf: &[u8], limit: u64) -> Result<(u64, usize), CompactError> {
    let Some(&first) = buf.first() else {
        return Err(CompactError::Truncated { needed: 1, have: 0 });
    };
    let len = encoded_len_from_marker(first);
    if buf.len() < len {
        return Err(CompactError::Truncated {
            needed: len,
            have: buf.len(),
        });
    }
    let value = decode_complete(&buf[..len])?;
    if value > limit {
        return Err(CompactError::TooLarge { value, limit });
    }
    Ok((value, len))
}

/// Decode a complete encoding (its length already known from the marker) and
/// check that it is minimal.
#[inline]
pub fn decode_complete(enc: &[u8]) -> Result<u64, CompactError> {
    let (value, min) = match enc.len() {
        1 => return Ok(u64::from(enc[0])),
        3 => (u64::from(u16::from_le_bytes([enc[1], enc[2]])), 0xFD),
        5 => (
            u64::from(u32::from_le_bytes([enc[1], enc[2], enc[3], enc[4]])),
            0x1_0000,
        ),
        _ => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&enc[1..9]);
            (u64::from_le_bytes(b), 0x1_0000_0000)
        }
    };
    if value < min {
        return Err(CompactError::NonMinimal {
            value,
            len: enc.len(),
        });
    }
    Ok(value)
}

/// Append the minimal encoding of `value` to `out`.
pub fn write(value: u64, out: &mut Vec<u8>) {
    match encoded_len(value) {
        1 => out.push(value as u8),
        3 => {
            out.push(0xFD);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        5 => {
            out.push(0xFE);
            out.extend_from_slice(&(value as u32).to_le_bytes());
        }
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write(v, &mut out);
        out
    }

    #[test]
    fn boundaries_round_trip_with_minimal_lengths() {
        for (v, len) in [
            (0u64, 1usize),
            (0xFC, 1),
            (0xFD, 3),
            (0xFFFF, 3),
            (0x1_0000, 5),
            (0xFFFF_FFFF, 5),
            (0x1_0000_0000, 9),
            (u64::MAX, 9),
        ] {
            let e = enc(v);
            assert_eq!(e.len(), len, "{v}");
            assert_eq!(read(&e, u64::MAX), Ok((v, len)));
        }
    }

    #[test]
    fn non_minimal_encodings_are_rejected() {
        assert!(matches!(
            read(&[0xFD, 0xFC, 0x00], u64::MAX),
            Err(CompactError::NonMinimal { value: 0xFC, .. })
        ));
        assert!(matches!(
            read(&[0xFE, 0xFF, 0xFF, 0, 0], u64::MAX),
            Err(CompactError::NonMinimal { .. })
        ));
        assert!(matches!(
            read(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0], u64::MAX),
            Err(CompactError::NonMinimal { .. })
        ));
    }

    #[test]
    fn limit_and_truncation() {
        assert_eq!(
            read(&enc(MAX_SIZE + 1), MAX_SIZE),
            Err(CompactError::TooLarge {
                value: MAX_SIZE + 1,
                limit: MAX_SIZE
            })
        );
        assert_eq!(
            read(&[0xFE, 1, 2], u64::MAX),
            Err(CompactError::Truncated { needed: 5, have: 3 })
        );
        assert_eq!(
            read(&[], u64::MAX),
            Err(CompactError::Truncated { needed: 1, have: 0 })
        );
    }
}
