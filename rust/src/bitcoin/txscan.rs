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

use crate::compact::{decode_complete, encoded_len_from_marker};
use crate::error::KernelError;
use std::fmt;

pub const HEADER_LEN: u64 = 80;
/// The smallest possible transaction: version, two empty counts, lock time.
pub const MIN_TX_LEN: u64 = 10;
const OUTPOINT_LEN: u64 = 36;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    TxCount,
    Version,
    InCount,
    Flag,
    InCountAfterFlag,
    Outpoint,
    ScriptSigLen,
    ScriptSig,
    Sequence,
    OutCount,
    Value,
    PkScriptLen,
    PkScript,
    WitnessCount,
    WitnessItemLen,
    WitnessItem,
    LockTime,
    Done,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Header => "block header",
            Phase::TxCount => "transaction count",
            Phase::Version => "version",
            Phase::InCount | Phase::InCountAfterFlag => "input count",
            Phase::Flag => "segwit flag",
            Phase::Outpoint => "outpoint",
            Phase::ScriptSigLen => "input script length",
            Phase::ScriptSig => "input script",
            Phase::Sequence => "sequence",
            Phase::OutCount => "output count",
            Phase::Value => "output value",
            Phase::PkScriptLen => "output script length",
            Phase::PkScript => "output script",
            Phase::WitnessCount => "witness item count",
            Phase::WitnessItemLen => "witness item length",
            Phase::WitnessItem => "witness item",
            Phase::LockTime => "lock time",
            Phase::Done => "end of block",
        }
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

impl TxScanner {
    /// Feed the next bytes. After an error every later call returns it again.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), ScanError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.feed_inner(data);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn feed_inner(&mut self, data: &[u8]) -> Result<(), ScanError> {
        let mut data = data;
        let mut overflow = false;
        if let Some(limit) = self.size_limit {
            let room = limit.saturating_sub(self.pos);
            if (data.len() as u64) > room {
                data = &data[..room as usize];
                overflow = true;
            }
        }
        let base = self.pos;
        let mut i = 0usize;
        while i < data.len() {
            match self.phase {
                Phase::Done => {
                    return Err(self.trailing(base + i as u64));
                }
                Phase::Header => {
                    let have = (HEADER_LEN - self.need) as usize;
                    let n = (self.need as usize).min(data.len() - i);
                    self.header[have..have + n].copy_from_slice(&data[i..i + n]);
                    i += n;
                    self.need -= n as u64;
                    if self.need == 0 {
                        self.phase = Phase::TxCount;
                    }
                }
                Phase::Flag => {
                    let flag = data[i];
                    i += 1;
                    self.after_flag(flag, base + i as u64 - 1)?;
                }
                Phase::Version
                | Phase::Outpoint
                | Phase::ScriptSig
                | Phase::Sequence
                | Phase::Value
                | Phase::PkScript
                | Phase::WitnessItem
                | Phase::LockTime => {
                    let avail = (data.len() - i) as u64;
                    if avail < self.need {
                        self.need -= avail;
                        i = data.len();
                    } else {
                        i += self.need as usize;
                        self.need = 0;
                        self.after_field(base + i as u64)?;
                    }
                }
                _ => {
                    let start = base + i as u64;
                    if let Some(value) = self.take_compact(data, &mut i, start)? {
                        self.after_compact(value, base + i as u64)?;
                    }
                }
            }
        }
        self.pos = base + data.len() as u64;
        if overflow {
            return Err(self.trailing(self.pos));
        }
        Ok(())
    }

    fn trailing(&self, offset: u64) -> ScanError {
        match self.phase {
            Phase::Done => ScanError::CountMismatch {
                offset,
                reason: format!(
                    "bytes after the last of the block's {} transactions",
                    self.tx_count.unwrap_or(0)
                ),
            },
            _ => ScanError::Malformed {
                offset,
                reason: format!(
                    "more bytes than the block's size of {}",
                    self.size_limit.unwrap_or(0)
                ),
            },
        }
    }

    /// Read a CompactSize at `data[*i..]`, buffering it if it is split.
    #[inline]
    fn take_compact(
        &mut self,
        data: &[u8],
        i: &mut usize,
        start: u64,
    ) -> Result<Option<u64>, ScanError> {
        if self.var_have == 0 {
            let rest = &data[*i..];
            let need = encoded_len_from_marker(rest[0]);
            if rest.len() >= need {
                *i += need;
                return decode_complete(&rest[..need])
                    .map(Some)
                    .map_err(|e| self.malformed(start, e.to_string()));
            }
            self.var_buf[..rest.len()].copy_from_slice(rest);
            self.var_have = rest.len() as u8;
            self.var_need = need as u8;
            *i = data.len();
            return Ok(None);
        }
        let have = self.var_have as usize;
        let n = (self.var_need as usize - have).min(data.len() - *i);
        self.var_buf[have..have + n].copy_from_slice(&data[*i..*i + n]);
        *i += n;
        self.var_have += n as u8;
        if self.var_have < self.var_need {
            return Ok(None);
        }
        let len = self.var_need as usize;
        self.var_have = 0;
        let begun = start - have as u64;
        decode_complete(&self.var_buf[..len])
            .map(Some)
            .map_err(|e| self.malformed(begun, e.to_string()))
    }

    fn malformed(&self, offset: u64, reason: String) -> ScanError {
        ScanError::Malformed {
            offset,
            reason: format!("transaction #{}: {reason}", self.completed),
        }
    }

    /// A length read from the data must fit in what is left of the block.
    fn check_fits(&self, len: u64, at: u64, what: &str) -> Result<(), ScanError> {
        if let Some(limit) = self.size_limit {
            if len > limit.saturating_sub(at) {
                return Err(self.malformed(
                    at,
                    format!("{what} of {len} bytes runs past the end of the block"),
                ));
            }
        }
        Ok(())
    }

    fn skip(&mut self, phase: Phase, len: u64) {
        self.phase = phase;
        self.need = len;
    }

    fn after_flag(&mut self, flag: u8, at: u64) -> Result<(), ScanError> {
        match flag {
            // Core: an empty input vector then flags 0 is a transaction with
            // no inputs and no outputs (the "flags" byte was the output count).
            0 => self.skip(Phase::LockTime, 4),
            1 => {
                self.segwit = true;
                self.phase = Phase::InCountAfterFlag;
            }
            other => {
                return Err(self.malformed(
                    at,
                    format!("unknown segwit flag 0x{other:02x} (Core: unknown optional data)"),
                ))
            }
        }
        Ok(())
    }

    /// A fixed-size or length-prefixed field has been skipped; `at` is the
    /// offset just past it.
    fn after_field(&mut self, at: u64) -> Result<(), ScanError> {
        match self.phase {
            Phase::Version => self.phase = Phase::InCount,
            Phase::Outpoint => self.phase = Phase::ScriptSigLen,
            Phase::ScriptSig => self.skip(Phase::Sequence, 4),
            Phase::Sequence => self.next_input(),
            Phase::Value => self.phase = Phase::PkScriptLen,
            Phase::PkScript => self.next_output(at),
            Phase::WitnessItem => self.next_witness_item(),
            Phase::LockTime => self.end_tx(at)?,
            _ => {}
        }
        Ok(())
    }

    fn after_compact(&mut self, value: u64, at: u64) -> Result<(), ScanError> {
        match self.phase {
            Phase::TxCount => {
                if value == 0 {
                    return Err(self.malformed(at, "a block has at least one transaction".into()));
                }
                if let Some(limit) = self.size_limit {
                    let room = limit.saturating_sub(at);
                    if value > room / MIN_TX_LEN {
                        return Err(ScanError::Malformed {
                            offset: at,
                            reason: format!(
                                "transaction count {value} cannot fit in the {room} bytes left"
                            ),
                        });
                    }
                }
                self.tx_count = Some(value);
                self.start_tx_at(at);
            }
            Phase::InCount if value == 0 && self.allow_witness => self.phase = Phase::Flag,
            Phase::InCount | Phase::InCountAfterFlag => {
                self.n_inputs = value;
                self.inputs_left = value;
                self.next_input();
            }
            Phase::ScriptSigLen => {
                self.check_fits(value, at, "input script")?;
                self.skip(Phase::ScriptSig, value);
            }
            Phase::OutCount => {
                self.outputs_left = value;
                self.next_output(at);
            }
            Phase::PkScriptLen => {
                self.check_fits(value, at, "output script")?;
                self.skip(Phase::PkScript, value);
            }
            Phase::WitnessCount => {
                self.items_left = value;
                self.next_witness_item();
            }
            Phase::WitnessItemLen => {
                self.check_fits(value, at, "witness item")?;
                self.skip(Phase::WitnessItem, value);
            }
            _ => {}
        }
        Ok(())
    }

    fn start_tx_at(&mut self, at: u64) {
        self.offsets.push(at);
        self.segwit = false;
        self.skip(Phase::Version, 4);
    }

    fn next_input(&mut self) {
        if self.inputs_left > 0 {
            self.inputs_left -= 1;
            self.skip(Phase::Outpoint, OUTPOINT_LEN);
        } else {
            self.phase = Phase::OutCount;
        }
    }

    fn next_output(&mut self, at: u64) {
        if self.outputs_left > 0 {
            self.outputs_left -= 1;
            self.skip(Phase::Value, 8);
        } else if self.segwit {
            self.witness.push(WitnessLayout {
                tx_index: self.offsets_base + self.offsets.len() as u64 - 1,
                witness_start: at,
            });
            self.witness_inputs_left = self.n_inputs;
            self.next_witness_input();
        } else {
            self.skip(Phase::LockTime, 4);
        }
    }

    fn next_witness_input(&mut self) {
        if self.witness_inputs_left > 0 {
            self.witness_inputs_left -= 1;
            self.phase = Phase::WitnessCount;
        } else {
            self.skip(Phase::LockTime, 4);
        }
    }

    fn next_witness_item(&mut self) {
        if self.items_left > 0 {
            self.items_left -= 1;
            self.phase = Phase::WitnessItemLen;
        } else {
            self.next_witness_input();
        }
    }

    fn end_tx(&mut self, at: u64) -> Result<(), ScanError> {
        self.completed += 1;
        self.last_tx_end = at;
        if Some(self.completed) == self.tx_count {
            self.phase = Phase::Done;
        } else {
            self.start_tx_at(at);
        }
        Ok(())
    }
}

/// Offsets of every transaction in a whole block.
pub fn tx_offsets(block: &[u8], allow_witness: bool) -> Result<Vec<u64>, ScanError> {
    let mut scanner = TxScanner::for_block(Some(block.len() as u64), allow_witness);
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
    let mut scanner = TxScanner::for_block(Some(block.len() as u64), allow_witness);
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
