//! The chunk splitter: cuts a block, fed as it arrives from a socket, into
//! chunks of whole transactions for parallel processing.
//!
//! With chunk size C and block size S there are exactly ceil(S / C) chunks;
//! chunk k holds the transactions, not in an earlier chunk, that end within the
//! first (k+1)·C bytes, and the last chunk ends at the block's end. A chunk is
//! empty only when one transaction is larger than C. Chunk k is complete as
//! soon as byte (k+1)·C has been scanned, so the splitter holds at most C bytes
//! plus the part of the one transaction that straddles the cut.
//!
//! Chunk data starts at the chunk's first transaction: the 80-byte header and
//! the transaction count are reported once, by the splitter, not in chunk 0.

use super::txscan::{ScanError, TxScanner, WitnessLayout, HEADER_LEN};
use crate::hash::sha256d;

/// 32 MiB, the default chunk size (also conduit-p2p's and the BSV node's
/// large-message piece size).
pub const DEFAULT_CHUNK_SIZE: u64 = 32 << 20;

/// Everything about a chunk but its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMeta {
    pub chunk_num: u64,
    pub num_chunks: u64,
    /// Offset in the block of the chunk's first byte.
    pub start: u64,
    /// Absolute offsets (from the block's first byte) of this chunk's transactions.
    pub tx_offsets: Vec<u64>,
    pub first_tx_index: u64,
    /// Segwit transactions of this chunk (for txids).
    pub witness: Vec<WitnessLayout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub meta: ChunkMeta,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub struct BlockChunker {
    scanner: TxScanner,
    block_size: u64,
    chunk_size: u64,
    num_chunks: u64,
    next_chunk: u64,
    /// Block bytes from `buf_start` up to the scanner's position.
    buf: Vec<u8>,
    buf_start: u64,
    emitted_txs: u64,
    block_hash: Option<[u8; 32]>,
    /// The bytes of the chunk just cut, still in `buf` until released, so a
    /// caller can copy them once, straight into its own buffer.
    pending: Option<std::ops::Range<usize>>,
}

impl BlockChunker {
    pub fn new(block_size: u64, chunk_size: u64, allow_witness: bool) -> Result<Self, ScanError> {
        if chunk_size == 0 {
            return Err(ScanError::Malformed {
                offset: 0,
                reason: "chunk size must be positive".into(),
            });
        }
        if block_size < HEADER_LEN + 1 + 10 {
            return Err(ScanError::Malformed {
                offset: 0,
                reason: format!("a block of {block_size} bytes is too small to hold a transaction"),
            });
        }
        Ok(Self {
            scanner: TxScanner::for_block(Some(block_size), allow_witness),
            block_size,
            chunk_size,
            num_chunks: block_size.div_ceil(chunk_size),
            next_chunk: 0,
            // One allocation for the whole block: the buffer never holds more
            // than a chunk plus the part of the one transaction straddling a cut.
            buf: Vec::with_capacity(block_size.min(chunk_size + (1 << 20)) as usize),
            buf_start: 0,
            emitted_txs: 0,
            block_hash: None,
            pending: None,
        })
    }

    pub fn num_chunks(&self) -> u64 {
        self.num_chunks
    }
    pub fn block_size(&self) -> u64 {
        self.block_size
    }
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }
    pub fn position(&self) -> u64 {
        self.scanner.position()
    }
    pub fn header(&self) -> Option<&[u8; 80]> {
        self.scanner.header()
    }
    pub fn block_hash(&self) -> Option<[u8; 32]> {
        self.block_hash
    }
    pub fn tx_count(&self) -> Option<u64> {
        self.scanner.tx_count()
    }
    pub fn is_done(&self) -> bool {
        self.next_chunk == self.num_chunks
    }
    /// Bytes currently held (for memory accounting in tests).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feed the next bytes; returns the chunks they complete, in order.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<Vec<Chunk>, ScanError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (used, meta) = self.feed_step(data)?;
            if let Some(meta) = meta {
                out.push(Chunk {
                    meta,
                    data: self.pending_bytes().to_vec(),
                });
            }
            data = &data[used..];
        }
        self.release_pending();
        Ok(out)
    }

    /// Feed bytes up to the next cut at most; returns how many were used and,
    /// if a cut was reached, the chunk, whose bytes are `pending_bytes()` until
    /// the next call.
    pub fn feed_step(&mut self, data: &[u8]) -> Result<(usize, Option<ChunkMeta>), ScanError> {
        self.release_pending();
        let pos = self.scanner.position();
        let boundary = self.cut_of(self.next_chunk);
        let take = (boundary.saturating_sub(pos)).min(data.len() as u64) as usize;
        // Past the last cut (or the block): the scanner reports the excess.
        let take = if take == 0 { data.len() } else { take };
        let piece = &data[..take];
        self.scanner.feed(piece)?;
        self.buf.extend_from_slice(piece);
        if self.block_hash.is_none() {
            self.block_hash = self.scanner.header().map(|h| sha256d(h));
        }
        let chunk = if self.scanner.position() == boundary {
            Some(self.cut()?)
        } else {
            None
        };
        Ok((take, chunk))
    }

    /// The bytes of the chunk returned by the last `feed_step`.
    pub fn pending_bytes(&self) -> &[u8] {
        match &self.pending {
            Some(range) => &self.buf[range.clone()],
            None => &[],
        }
    }

    fn release_pending(&mut self) {
        if let Some(range) = self.pending.take() {
            self.buf.drain(..range.end);
            self.buf_start += range.end as u64;
        }
    }

    /// Where chunk `k` ends at the latest: (k+1)·C, or the block's end.
    fn cut_of(&self, k: u64) -> u64 {
        if k + 1 >= self.num_chunks {
            self.block_size
        } else {
            (k + 1) * self.chunk_size
        }
    }

    fn cut(&mut self) -> Result<ChunkMeta, ScanError> {
        let last = self.next_chunk + 1 == self.num_chunks;
        if last {
            self.scanner.finish()?;
        }
        let completed = self.scanner.completed();
        let n = (completed - self.emitted_txs) as usize;
        let (tx_offsets, witness) = self.scanner.drain_found(n);
        let start = tx_offsets
            .first()
            .copied()
            .unwrap_or(self.buf_start.max(self.tx_region_start()));
        if n > 0 {
            let from = (start - self.buf_start) as usize;
            let to = (self.scanner.last_tx_end() - self.buf_start) as usize;
            self.pending = Some(from..to);
        }
        let meta = ChunkMeta {
            chunk_num: self.next_chunk,
            num_chunks: self.num_chunks,
            start,
            tx_offsets,
            first_tx_index: self.emitted_txs,
            witness,
        };
        self.emitted_txs = completed;
        self.next_chunk += 1;
        Ok(meta)
    }

    /// Offset of the first transaction, once known (else the header's end).
    fn tx_region_start(&self) -> u64 {
        self.scanner
            .offsets()
            .first()
            .copied()
            .unwrap_or(HEADER_LEN)
    }
}
