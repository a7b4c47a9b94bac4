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

use super::buffer_pool::GLOBAL as POOL;
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
    pub data: ChunkBytes,
}

/// A chunk's bytes, in the buffer the splitter filled (no copy is made when a
/// chunk is cut). Dropping it hands the buffer back to the pool for a later
/// chunk, so its pages need not fault in again.
pub struct ChunkBytes {
    buf: Vec<u8>,
    /// The chunk starts here in `buf` (before it: what preceded the first
    /// transaction, such as the header in chunk 0).
    start: usize,
}

impl ChunkBytes {
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            buf: bytes.to_vec(),
            start: 0,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl std::ops::Deref for ChunkBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Drop for ChunkBytes {
    fn drop(&mut self) {
        POOL.give(std::mem::take(&mut self.buf));
    }
}

impl Clone for ChunkBytes {
    fn clone(&self) -> Self {
        Self::new(self.as_slice())
    }
}

impl PartialEq for ChunkBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ChunkBytes {}

impl std::fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkBytes({} bytes)", self.as_slice().len())
    }
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
            buf: POOL.take(Self::buffer_capacity(block_size, chunk_size)),
            buf_start: 0,
            emitted_txs: 0,
            block_hash: None,
        })
    }

    /// A buffer holds a chunk plus the part of the one transaction that
    /// straddles its cut: room for a chunk and 1 MiB covers all but rare
    /// huge transactions (for those the buffer grows).
    fn buffer_capacity(block_size: u64, chunk_size: u64) -> usize {
        block_size.min(chunk_size.saturating_add(1 << 20)) as usize
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
            let (used, chunk) = self.feed_step(data)?;
            out.extend(chunk);
            data = &data[used..];
        }
        Ok(out)
    }

    /// Feed bytes up to the next cut at most; returns how many were used and,
    /// if a cut was reached, the chunk.
    pub fn feed_step(&mut self, data: &[u8]) -> Result<(usize, Option<Chunk>), ScanError> {
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

    /// Where chunk `k` ends at the latest: (k+1)·C, or the block's end.
    fn cut_of(&self, k: u64) -> u64 {
        if k + 1 >= self.num_chunks {
            self.block_size
        } else {
            (k + 1) * self.chunk_size
        }
    }

    fn cut(&mut self) -> Result<Chunk, ScanError> {
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
        let data = if n > 0 {
            self.take_through(
                (self.scanner.last_tx_end() - self.buf_start) as usize,
                start,
            )
        } else {
            ChunkBytes::new(&[])
        };
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
        Ok(Chunk { meta, data })
    }

    /// Hands over the buffer up to `to` as a chunk starting at block offset
    /// `start`; what follows `to` (the start of the transaction straddling
    /// the cut) moves to a fresh buffer from the pool.
    fn take_through(&mut self, to: usize, start: u64) -> ChunkBytes {
        let mut next = if self.next_chunk + 1 == self.num_chunks {
            Vec::new() // the last chunk: nothing follows it
        } else {
            POOL.take(Self::buffer_capacity(self.block_size, self.chunk_size))
        };
        next.extend_from_slice(&self.buf[to..]);
        let mut buf = std::mem::replace(&mut self.buf, next);
        buf.truncate(to);
        let from = (start - self.buf_start) as usize;
        self.buf_start += to as u64;
        ChunkBytes { buf, start: from }
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

impl Drop for BlockChunker {
    fn drop(&mut self) {
        POOL.give(std::mem::take(&mut self.buf));
    }
}
