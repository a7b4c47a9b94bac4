//! The scanner's state machine: one phase per field of a block or
//! transaction, and what each field's end (or CompactSize value) leads to.
//! The scanner's state and its public surface are in `txscan`.

use super::{ScanError, TxScanner, WitnessLayout, HEADER_LEN, MIN_TX_LEN, OUTPOINT_LEN};
use crate::bitcoin::txwalk::{walk_tx, Prefetcher, SkipAll};
use crate::compact::{decode_complete, encoded_len_from_marker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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
    pub(super) fn name(self) -> &'static str {
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
            if self.phase == Phase::Version
                && self.need == 4
                && self.walk_whole(data, &mut i, base)?
            {
                continue;
            }
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

    /// The fast path: walk every transaction that lies whole in `data[*i..]`
    /// straight through (`txwalk`); true if it moved on. The first one that
    /// is split or malformed is left to the phase machine. The loop keeps its
    /// state in locals and settles the scanner's fields once, as `end_tx`
    /// would have after each transaction: on small transactions the stores
    /// through `self` cost a good part of the walk.
    fn walk_whole(&mut self, data: &[u8], i: &mut usize, base: u64) -> Result<bool, ScanError> {
        let Some(count) = self.tx_count else {
            return Ok(false);
        };
        let from = *i;
        let allow_witness = self.allow_witness;
        let mut left = count - self.completed;
        let mut ahead = Prefetcher::new(from);
        let mut p = from;
        while left > 0 && p < data.len() {
            ahead.advance(data, p);
            let Some(tx) = walk_tx(data, p, allow_witness, &mut SkipAll) else {
                break;
            };
            if let Some(ws) = tx.witness_start {
                self.witness.push(WitnessLayout {
                    tx_index: self.offsets_base + self.offsets.len() as u64 - 1,
                    witness_start: base + ws as u64,
                });
            }
            p = tx.end;
            left -= 1;
            if left > 0 {
                self.offsets.push(base + p as u64);
            }
        }
        if p == from {
            return Ok(false);
        }
        *i = p;
        self.completed = count - left;
        self.last_tx_end = base + p as u64;
        if left == 0 {
            self.phase = Phase::Done;
        } else {
            // where `start_tx_at` leaves a transaction (its offset is pushed)
            self.segwit = false;
            self.skip(Phase::Version, 4);
        }
        Ok(true)
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

    pub(super) fn start_tx_at(&mut self, at: u64) {
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
