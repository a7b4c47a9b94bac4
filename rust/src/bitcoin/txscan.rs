//! The transaction preprocessor: finds where every transaction of a block
//! starts without parsing scripts, from bytes fed in pieces of any size.
//!
//! A push decoder in the style of rust-bitcoin's: an explicit phase enum, the
//! bytes still to skip in the current field, and a 9-byte buffer for a
//! CompactSize split across pieces, so it resumes mid-field and never holds a
//! transaction's bytes. The layout follows Bitcoin Core's
//! `UnserializeTransaction` (primitives/transaction.h): version, inputs
//! (outpoint, script, sequence), outputs (value, script), witness stacks when
//! the segwit marker 0x00 and flag 0x01 follow the version (BTC only), lock time.
//!
//! This file holds the scanner's state, its public surface and the one-call
//! forms; the phases and their transitions are in `txscan_phases.rs`.

use crate::error::KernelError;
use phases::Phase;
use std::fmt;

#[path = "txscan_phases.rs"]
mod phases;

pub const HEADER_LEN: u64 = 80;
/// The smallest possible transaction: version, two empty counts, lock time.
pub const MIN_TX_LEN: u64 = 10;
pub(super) const OUTPOINT_LEN: u64 = 36;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The data ended inside a field; `offset` is where it ended.
    Truncated {
        offset: u64,
        field: &'static str,
        tx: u64,
    },
    /// A field holds an impossible value.
    Malformed { offset: u64, reason: String },
    /// More or fewer transactions than the block's count.
    CountMismatch { offset: u64, reason: String },
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset, field, tx } => write!(
                f,
                "data ends at offset {offset} inside the {field} of transaction #{tx}"
            ),
            Self::Malformed { offset, reason } | Self::CountMismatch { offset, reason } => {
                write!(f, "{reason} (at offset {offset})")
            }
        }
    }
}

impl KernelError for ScanError {
    fn py_class(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "TruncatedBlockError",
            Self::Malformed { .. } => "MalformedBlockError",
            Self::CountMismatch { .. } => "TxCountMismatchError",
        }
    }
    fn offset(&self) -> Option<u64> {
        Some(match self {
            Self::Truncated { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::CountMismatch { offset, .. } => *offset,
        })
    }
}

/// Where the parts of a segwit transaction are, to hash it without its
/// witness (the txid): version `[start, start+4)`, then the marker and flag,
/// the body `[start+6, witness_start)`, the witness, then the lock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessLayout {
    pub tx_index: u64,
    pub witness_start: u64,
}

#[derive(Debug, Clone)]
pub struct TxScanner {
    allow_witness: bool,
    /// Total size, when known: bytes past it are an error, and counts and
    /// lengths that cannot fit are caught before the data runs out.
    size_limit: Option<u64>,
    phase: Phase,
    /// Absolute offset of the next byte.
    pos: u64,
    /// Bytes left in the current fixed-size or length-prefixed field.
    need: u64,
    var_buf: [u8; 9],
    var_have: u8,
    var_need: u8,
    header: [u8; 80],
    tx_count: Option<u64>,
    offsets: Vec<u64>,
    completed: u64,
    last_tx_end: u64,
    inputs_left: u64,
    n_inputs: u64,
    outputs_left: u64,
    segwit: bool,
    witness_inputs_left: u64,
    items_left: u64,
    witness: Vec<WitnessLayout>,
    offsets_base: u64,
    has_header: bool,
    failed: Option<ScanError>,
}

impl TxScanner {
    /// A scanner for a block: 80-byte header, transaction count, transactions.
    pub fn for_block(size_limit: Option<u64>, allow_witness: bool) -> Self {
        Self {
            allow_witness,
            size_limit,
            phase: Phase::Header,
            pos: 0,
            need: HEADER_LEN,
            var_buf: [0; 9],
            var_have: 0,
            var_need: 0,
            header: [0; 80],
            tx_count: None,
            offsets: Vec::new(),
            completed: 0,
            last_tx_end: 0,
            inputs_left: 0,
            n_inputs: 0,
            outputs_left: 0,
            segwit: false,
            witness_inputs_left: 0,
            items_left: 0,
            witness: Vec::new(),
            offsets_base: 0,
            has_header: true,
            failed: None,
        }
    }

    /// A scanner for `count` consecutive transactions with no block header.
    pub fn for_transactions(count: u64, size_limit: Option<u64>, allow_witness: bool) -> Self {
        let mut s = Self::for_block(size_limit, allow_witness);
        s.tx_count = Some(count);
        s.has_header = false;
        if count == 0 {
            s.phase = Phase::Done;
        } else {
            s.start_tx_at(0);
        }
        s
    }

    /// The block header, once its 80 bytes are in (None in transaction mode).
    pub fn header(&self) -> Option<&[u8; 80]> {
        (self.has_header && self.pos >= HEADER_LEN).then_some(&self.header)
    }

    pub fn tx_count(&self) -> Option<u64> {
        self.tx_count
    }
    /// Start offsets of the transactions found so far (the last may be incomplete).
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }
    /// Number of complete transactions.
    pub fn completed(&self) -> u64 {
        self.completed
    }
    /// Offset just past the last complete transaction (0 before the first).
    pub fn last_tx_end(&self) -> u64 {
        self.last_tx_end
    }
    pub fn position(&self) -> u64 {
        self.pos
    }
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
    pub fn witness_layouts(&self) -> &[WitnessLayout] {
        &self.witness
    }

    /// Index of the transaction whose start is `offsets()[0]`.
    pub fn offsets_base(&self) -> u64 {
        self.offsets_base
    }

    /// Hand on the first `n` offsets kept (and the witness layouts of those
    /// transactions), so that a caller consuming them as it goes keeps the
    /// scanner's memory bounded (the chunk splitter does).
    pub fn drain_found(&mut self, n: usize) -> (Vec<u64>, Vec<WitnessLayout>) {
        let n = n.min(self.offsets.len());
        let offsets: Vec<u64> = self.offsets.drain(..n).collect();
        self.offsets_base += n as u64;
        let cut = self
            .witness
            .partition_point(|w| w.tx_index < self.offsets_base);
        (offsets, self.witness.drain(..cut).collect())
    }

    /// Check that the data ended exactly at the end of the last transaction.
    pub fn finish(&self) -> Result<(), ScanError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.phase == Phase::Done {
            return Ok(());
        }
        let at_tx_boundary = self.phase == Phase::Version && self.need == 4 && self.var_have == 0;
        match self.tx_count {
            Some(count) if at_tx_boundary && self.completed > 0 => Err(ScanError::CountMismatch {
                offset: self.pos,
                reason: format!(
                    "block ends after {} of its {count} transactions",
                    self.completed
                ),
            }),
            _ => Err(ScanError::Truncated {
                offset: self.pos,
                field: self.phase.name(),
                tx: self.completed,
            }),
        }
    }
}

/// A scanner for a whole block at hand, its offsets reserved for the
/// block's transaction count (growing the vector copied it a dozen times
/// on a large block); a count the bytes cannot hold is left to the scan to
/// refuse, and reserves nothing.
fn whole_block_scanner(block: &[u8], allow_witness: bool) -> TxScanner {
    let mut scanner = TxScanner::for_block(Some(block.len() as u64), allow_witness);
    let room = block.len() as u64;
    if let Some(Ok((count, _))) = block
        .get(HEADER_LEN as usize..)
        .map(|rest| crate::compact::read(rest, room / MIN_TX_LEN))
    {
        scanner.offsets.reserve(count as usize);
    }
    scanner
}

/// Offsets of every transaction in a whole block.
pub fn tx_offsets(block: &[u8], allow_witness: bool) -> Result<Vec<u64>, ScanError> {
    let mut scanner = whole_block_scanner(block, allow_witness);
    scanner.feed(block)?;
    scanner.finish()?;
    Ok(scanner.offsets)
}

/// Split a block into its transactions: offsets plus the witness layouts of
/// its segwit transactions (for txids).
pub fn scan_block(
    block: &[u8],
    allow_witness: bool,
) -> Result<(Vec<u64>, Vec<WitnessLayout>), ScanError> {
    let mut scanner = whole_block_scanner(block, allow_witness);
    scanner.feed(block)?;
    scanner.finish()?;
    Ok((scanner.offsets, scanner.witness))
}

/// Split `count` consecutive transactions (no block header) the same way;
/// offsets are from the start of `data`.
pub fn scan_transactions(
    data: &[u8],
    count: u64,
    allow_witness: bool,
) -> Result<(Vec<u64>, Vec<WitnessLayout>), ScanError> {
    let mut scanner = TxScanner::for_transactions(count, Some(data.len() as u64), allow_witness);
    scanner.feed(data)?;
    scanner.finish()?;
    Ok((scanner.offsets, scanner.witness))
}
