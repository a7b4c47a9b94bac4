//! The columnar transaction parser: a block, or a chunk of whole transactions
//! with their offsets, into columns an indexer writes straight out:
//!
//! - transactions: txid (without witness), offset in the block, size;
//! - outputs: transaction row, output index, value, script offset and length,
//!   SHA-256 of the script (Electrum's script hash, in hashed byte order);
//! - inputs: transaction row, input index, previous txid and output index,
//!   and whether the input is a coinbase (Core's `IsCoinBase`: the only input
//!   of its transaction, spending the null outpoint).
//!
//! Transactions are read by the preprocessor's own straight-line walk
//! (`txwalk`); when a walk fails, the preprocessor's phase machine is run over
//! the same bytes to name the error, so a malformed block gets the same typed
//! error and offset here as from `tx_offsets`. Counts from the data are
//! checked against the bytes that could hold them before anything is reserved.
//!
//! The walk fills every column but the hashes; the txids and script hashes
//! are computed afterwards, many messages at once (`hash::batch`: several
//! SHA-256 streams interleaved, or sixteen one-block messages side by side),
//! which is more than twice as fast as one message after another.

use super::merkle::txid_message;
use super::txscan::{self, ScanError, HEADER_LEN, MIN_TX_LEN};
use super::txwalk::{walk_tx, Prefetcher, Visit};
use crate::compact;
use crate::error::KernelError;
use crate::hash::{sha256_batch, sha256d_batch, Message};
use std::fmt;

/// The smallest input (outpoint, empty script, sequence) and output (value,
/// empty script): bounds on how many rows some bytes can hold.
const MIN_INPUT_LEN: usize = 41;
const MIN_OUTPUT_LEN: usize = 9;
const NULL_PREV_INDEX: u32 = u32::MAX;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Columns {
    pub tx_txid: Vec<[u8; 32]>,
    pub tx_offset: Vec<u64>,
    pub tx_size: Vec<u64>,
    pub out_tx: Vec<u64>,
    pub out_index: Vec<u32>,
    pub out_value: Vec<i64>,
    pub out_script_offset: Vec<u64>,
    pub out_script_len: Vec<u64>,
    pub out_script_hash: Vec<[u8; 32]>,
    pub in_tx: Vec<u64>,
    pub in_index: Vec<u32>,
    pub in_prev_txid: Vec<[u8; 32]>,
    pub in_prev_index: Vec<u32>,
    pub in_coinbase: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes are not a block or a run of transactions (the preprocessor's verdict).
    Scan(ScanError),
    /// The offsets given with a chunk do not delimit its transactions.
    Offsets { offset: u64, reason: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scan(err) => err.fmt(f),
            Self::Offsets { offset, reason } => write!(f, "{reason} (at offset {offset})"),
        }
    }
}

impl KernelError for ParseError {
    fn py_class(&self) -> &'static str {
        match self {
            Self::Scan(err) => err.py_class(),
            Self::Offsets { .. } => "ChunkOffsetsError",
        }
    }
    fn offset(&self) -> Option<u64> {
        match self {
            Self::Scan(err) => err.offset(),
            Self::Offsets { offset, .. } => Some(*offset),
        }
    }
}

impl From<ScanError> for ParseError {
    fn from(err: ScanError) -> Self {
        Self::Scan(err)
    }
}

/// Fills the input and output columns of one transaction as the walk passes.
struct Collect<'a> {
    cols: &'a mut Columns,
    /// Absolute offset of `data[0]` (script offsets are block offsets).
    base: u64,
    tx: u64,
    inputs: u32,
    outputs: u32,
}

impl Visit for Collect<'_> {
    #[inline]
    fn input(&mut self, data: &[u8], at: usize, _script_at: usize, _script_len: usize) {
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&data[at..at + 32]);
        let mut n = [0u8; 4];
        n.copy_from_slice(&data[at + 32..at + 36]);
        let c = &mut *self.cols;
        c.in_tx.push(self.tx);
        c.in_index.push(self.inputs);
        c.in_prev_txid.push(prev);
        c.in_prev_index.push(u32::from_le_bytes(n));
        c.in_coinbase.push(false);
        self.inputs += 1;
    }

    #[inline]
    fn output(&mut self, data: &[u8], at: usize, script_at: usize, script_len: usize) {
        let mut v = [0u8; 8];
        v.copy_from_slice(&data[at..at + 8]);
        let c = &mut *self.cols;
        c.out_tx.push(self.tx);
        c.out_index.push(self.outputs);
        c.out_value.push(i64::from_le_bytes(v));
        c.out_script_offset.push(self.base + script_at as u64);
        c.out_script_len.push(script_len as u64);
        self.outputs += 1;
    }
}

impl Columns {
    fn with_tx_capacity(n: usize) -> Self {
        Self {
            tx_txid: Vec::with_capacity(n),
            tx_offset: Vec::with_capacity(n),
            tx_size: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Reserve the input and output columns for `bytes` of transactions,
    /// guessing the common shape (an input and two outputs per ~250 bytes);
    /// never more rows than the bytes could hold.
    fn reserve_rows(&mut self, bytes: usize) {
        let inputs = (bytes / 200).min(bytes / MIN_INPUT_LEN);
        let outputs = (bytes / 100).min(bytes / MIN_OUTPUT_LEN);
        self.in_tx.reserve(inputs);
        self.in_index.reserve(inputs);
        self.in_prev_txid.reserve(inputs);
        self.in_prev_index.reserve(inputs);
        self.in_coinbase.reserve(inputs);
        self.out_tx.reserve(outputs);
        self.out_index.reserve(outputs);
        self.out_value.reserve(outputs);
        self.out_script_offset.reserve(outputs);
        self.out_script_len.reserve(outputs);
        self.out_script_hash.reserve(outputs);
        self.advise_huge_pages();
    }

    fn advise_huge_pages(&mut self) {
        use super::huge_pages::advise_spare_capacity as advise;
        advise(&mut self.tx_txid);
        advise(&mut self.tx_offset);
        advise(&mut self.tx_size);
        advise(&mut self.out_tx);
        advise(&mut self.out_index);
        advise(&mut self.out_value);
        advise(&mut self.out_script_offset);
        advise(&mut self.out_script_len);
        advise(&mut self.out_script_hash);
        advise(&mut self.in_tx);
        advise(&mut self.in_index);
        advise(&mut self.in_prev_txid);
        advise(&mut self.in_prev_index);
        advise(&mut self.in_coinbase);
    }

    pub fn num_txs(&self) -> usize {
        self.tx_offset.len()
    }

    /// Parse the transaction at `data[start..]`; `None` if it does not parse
    /// whole within `data`. `base` is the absolute offset of `data[0]`. Its
    /// txid and script hashes are left for `hash_rows`; a segwit
    /// transaction's row and witness start (in the transaction) go to `segwit`.
    fn push_tx(
        &mut self,
        data: &[u8],
        start: usize,
        base: u64,
        allow_witness: bool,
        segwit: &mut Vec<(usize, usize)>,
    ) -> Option<usize> {
        let tx = self.tx_offset.len() as u64;
        let inputs_before = self.in_tx.len();
        let mut collect = Collect {
            cols: self,
            base,
            tx,
            inputs: 0,
            outputs: 0,
        };
        let walked = walk_tx(data, start, allow_witness, &mut collect)?;
        let inputs = collect.inputs;
        if inputs == 1
            && self.in_prev_index[inputs_before] == NULL_PREV_INDEX
            && self.in_prev_txid[inputs_before] == [0u8; 32]
        {
            self.in_coinbase[inputs_before] = true;
        }
        if let Some(ws) = walked.witness_start {
            segwit.push((tx as usize, ws - start));
        }
        self.tx_offset.push(base + start as u64);
        self.tx_size.push((walked.end - start) as u64);
        Some(walked.end)
    }

    /// Fill the txid and script hash columns of every row, from the bytes
    /// the rows were parsed from (`base` is the absolute offset of `data[0]`).
    fn hash_rows(&mut self, data: &[u8], base: u64, segwit: &[(usize, usize)]) {
        let slice = |offset: u64, len: u64| {
            let at = (offset - base) as usize;
            &data[at..at + len as usize]
        };
        let mut segwit = segwit.iter().peekable();
        let txs =
            self.tx_offset
                .iter()
                .zip(&self.tx_size)
                .enumerate()
                .map(|(row, (&offset, &size))| {
                    let ws = segwit.next_if(|&&(r, _)| r == row).map(|&(_, ws)| ws);
                    txid_message(slice(offset, size), ws)
                });
        self.tx_txid.resize(self.tx_offset.len(), [0; 32]);
        sha256d_batch(txs, &mut self.tx_txid);
        let scripts = self
            .out_script_offset
            .iter()
            .zip(&self.out_script_len)
            .map(|(&offset, &len)| Message::new(slice(offset, len)));
        self.out_script_hash
            .resize(self.out_script_offset.len(), [0; 32]);
        sha256_batch(scripts, &mut self.out_script_hash);
    }
}

/// The preprocessor's error for bytes the walk refused (it agrees by
/// construction; the fallback only guards against the two ever diverging).
fn scan_verdict(found: Option<ScanError>, at: u64) -> ParseError {
    ParseError::Scan(found.unwrap_or_else(|| ScanError::Malformed {
        offset: at,
        reason: "transaction does not parse".into(),
    }))
}

/// Parse a whole block: 80-byte header, transaction count, transactions.
pub fn parse_block(block: &[u8], allow_witness: bool) -> Result<Columns, ParseError> {
    let refuse =
        |at: usize| scan_verdict(txscan::scan_block(block, allow_witness).err(), at as u64);
    let Some(rest) = block.get(HEADER_LEN as usize..) else {
        return Err(refuse(block.len()));
    };
    let Ok((count, len)) = compact::read(rest, u64::MAX) else {
        return Err(refuse(HEADER_LEN as usize));
    };
    let mut p = HEADER_LEN as usize + len;
    let room = (block.len() - p) as u64;
    if count == 0 || count > room / MIN_TX_LEN {
        return Err(refuse(p));
    }
    let mut cols = Columns::with_tx_capacity(count as usize);
    cols.reserve_rows(block.len() - p);
    let mut segwit = Vec::new();
    let mut ahead = Prefetcher::new(p);
    for _ in 0..count {
        ahead.advance(block, p);
        p = cols
            .push_tx(block, p, 0, allow_witness, &mut segwit)
            .ok_or_else(|| refuse(p))?;
    }
    if p != block.len() {
        return Err(refuse(p));
    }
    cols.hash_rows(block, 0, &segwit);
    Ok(cols)
}

/// Parse a chunk: `data` holds whole consecutive transactions, the first at
/// absolute offset `offsets[0]`, each starting at its offset and the last
/// ending at the end of `data`. Offsets in the result are absolute too.
pub fn parse_transactions(
    data: &[u8],
    offsets: &[u64],
    allow_witness: bool,
) -> Result<Columns, ParseError> {
    let Some(&base) = offsets.first() else {
        if data.is_empty() {
            return Ok(Columns::default());
        }
        return Err(ParseError::Offsets {
            offset: 0,
            reason: format!("{} bytes of data but no transaction offsets", data.len()),
        });
    };
    let end = base
        .checked_add(data.len() as u64)
        .ok_or(ParseError::Offsets {
            offset: base,
            reason: "offsets run past 2**64".into(),
        })?;
    if let Some(k) = (1..offsets.len()).find(|&k| offsets[k] <= offsets[k - 1] || offsets[k] >= end)
    {
        return Err(ParseError::Offsets {
            offset: offsets[k],
            reason: format!("offset #{k} is not after the one before it and inside the data"),
        });
    }
    // every offset is a transaction of at least MIN_TX_LEN bytes
    if offsets.len() as u64 > data.len() as u64 / MIN_TX_LEN {
        return Err(ParseError::Offsets {
            offset: base,
            reason: format!(
                "{} transactions cannot fit in {} bytes",
                offsets.len(),
                data.len()
            ),
        });
    }
    let refuse = |at: usize| {
        let found = txscan::scan_transactions(data, offsets.len() as u64, allow_witness).err();
        match scan_verdict(found, at as u64) {
            ParseError::Scan(err) => ParseError::Scan(rebase(err, base)),
            other => other,
        }
    };
    let mut cols = Columns::with_tx_capacity(offsets.len());
    cols.reserve_rows(data.len());
    let mut segwit = Vec::new();
    let mut ahead = Prefetcher::new(0);
    for (k, &start) in offsets.iter().enumerate() {
        let at = (start - base) as usize;
        ahead.advance(data, at);
        let stop = offsets
            .get(k + 1)
            .map_or(data.len(), |&o| (o - base) as usize);
        let ended = cols
            .push_tx(data, at, base, allow_witness, &mut segwit)
            .ok_or_else(|| refuse(at))?;
        if ended != stop {
            return Err(ParseError::Offsets {
                offset: base + ended as u64,
                reason: format!(
                    "transaction #{k} ends at {} but the next starts at {}",
                    base + ended as u64,
                    base + stop as u64
                ),
            });
        }
    }
    cols.hash_rows(data, base, &segwit);
    Ok(cols)
}

/// An error found in a chunk's data, moved to block offsets.
fn rebase(err: ScanError, base: u64) -> ScanError {
    match err {
        ScanError::Truncated { offset, field, tx } => ScanError::Truncated {
            offset: offset + base,
            field,
            tx,
        },
        ScanError::Malformed { offset, reason } => ScanError::Malformed {
            offset: offset + base,
            reason,
        },
        ScanError::CountMismatch { offset, reason } => ScanError::CountMismatch {
            offset: offset + base,
            reason,
        },
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
