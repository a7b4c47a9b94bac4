//! A connection's message stream in which large blocks come out as chunks.
//!
//! The framing decoder hands a large payload on in pieces that are ranges of
//! the caller's input; here the pieces of a large `block` go straight into
//! the chunk splitter, in the same call, so the payload is copied once (into
//! the chunk buffer) and never becomes a separate object per piece. Every
//! other event passes through unchanged, and with chunking off the stream is
//! exactly the framing decoder.

use super::chunker::{BlockChunker, Chunk};
use super::framing::{DecoderLimits, Event, FramingError, MessageDecoder};
use super::txscan::ScanError;
use crate::error::KernelError;
use std::fmt;

/// How large blocks are cut.
#[derive(Debug, Clone, Copy)]
pub struct Chunking {
    pub chunk_size: u64,
    pub allow_witness: bool,
    /// Streamed blocks shorter than this are passed on as pieces (a caller
    /// whose decoder streams more than blocks it wants cut gathers them).
    pub min_block_size: u64,
}

/// What a chunked block was, reported once all its chunks are out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedBlock {
    pub hash: [u8; 32],
    pub header: [u8; 80],
    pub size: u64,
    pub tx_count: u64,
    pub num_chunks: u64,
}

#[derive(Debug)]
pub enum StreamEvent {
    /// A framing event that is not part of a chunked block.
    Frame(Event),
    /// The next chunk of the large block being received, and that block's hash.
    Chunk { chunk: Chunk, block_hash: [u8; 32] },
    /// The large block is complete: its payload checksum verified and its
    /// transactions all found. (Its `LargeStart` came as a `Frame`.)
    BlockEnd(ChunkedBlock),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// Framing broke at this stream offset.
    Framing(FramingError, u64),
    /// The large block's bytes are not a block (offsets are in the block).
    Block(ScanError),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Framing(err, at) => write!(f, "{err} (at offset {at})"),
            Self::Block(err) => write!(f, "block: {err}"),
        }
    }
}

impl KernelError for StreamError {
    fn py_class(&self) -> &'static str {
        match self {
            Self::Framing(err, _) => err.py_class(),
            Self::Block(err) => err.py_class(),
        }
    }
    fn offset(&self) -> Option<u64> {
        match self {
            Self::Framing(_, at) => Some(*at),
            Self::Block(err) => err.offset(),
        }
    }
}

#[derive(Debug)]
pub struct BlockStream {
    decoder: MessageDecoder,
    chunking: Option<Chunking>,
    /// The splitter of the large block being received.
    chunker: Option<BlockChunker>,
    /// Framing events of the current call, kept to reuse the allocation.
    scratch: Vec<Event>,
    failed: Option<StreamError>,
}

impl BlockStream {
    pub fn new(magic: [u8; 4], limits: DecoderLimits, chunking: Option<Chunking>) -> Self {
        Self {
            decoder: MessageDecoder::new(magic, limits),
            chunking,
            chunker: None,
            scratch: Vec::new(),
            failed: None,
        }
    }

    pub fn consumed(&self) -> u64 {
        self.decoder.consumed()
    }

    pub fn at_boundary(&self) -> bool {
        self.decoder.at_boundary()
    }

    /// Feed bytes; events are appended to `out`. After an error every later
    /// call returns the same error (the stream cannot be resynchronised).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        let mut events = std::mem::take(&mut self.scratch);
        let result = self.feed_events(data, &mut events, out);
        events.clear();
        self.scratch = events;
        if let Err(err) = &result {
            self.chunker = None;
            self.failed = Some(err.clone());
        }
        result
    }

    fn feed_events(
        &mut self,
        data: &[u8],
        events: &mut Vec<Event>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        // Events before a framing error are still passed on: they arrived
        // intact, and the error is raised after them.
        let framing = self.decoder.feed(data, events);
        for event in events.drain(..) {
            self.route(event, data, out)?;
        }
        framing.map_err(|(err, at)| StreamError::Framing(err, at))
    }

    fn route(
        &mut self,
        event: Event,
        data: &[u8],
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        match (event, &mut self.chunker, self.chunking) {
            (Event::LargeStart { command, length }, None, Some(chunking))
                if command == "block" && length >= chunking.min_block_size =>
            {
                let chunker =
                    BlockChunker::new(length, chunking.chunk_size, chunking.allow_witness)
                        .map_err(StreamError::Block)?;
                self.chunker = Some(chunker);
                out.push(StreamEvent::Frame(Event::LargeStart { command, length }));
            }
            (Event::LargePiece(piece), Some(chunker), _) => {
                let mut rest = piece.resolve(data);
                while !rest.is_empty() {
                    let (used, chunk) = chunker.feed_step(rest).map_err(StreamError::Block)?;
                    if let Some(chunk) = chunk {
                        // A chunk is cut after the header, so the hash is known.
                        let block_hash = chunker.block_hash().unwrap_or_default();
                        out.push(StreamEvent::Chunk { chunk, block_hash });
                    }
                    rest = &rest[used..];
                }
            }
            (Event::LargeEnd { .. }, Some(_), _) => {
                let chunker = self.chunker.take();
                out.push(StreamEvent::BlockEnd(finished(chunker)?));
            }
            (event, _, _) => out.push(StreamEvent::Frame(event)),
        }
        Ok(())
    }
}

/// The summary of a splitter that has seen its whole block.
fn finished(chunker: Option<BlockChunker>) -> Result<ChunkedBlock, StreamError> {
    let incomplete = |offset| {
        StreamError::Block(ScanError::Malformed {
            offset,
            reason: "the payload ended before the block did".into(),
        })
    };
    let Some(chunker) = chunker else {
        return Err(incomplete(0));
    };
    match (
        chunker.is_done(),
        chunker.block_hash(),
        chunker.header(),
        chunker.tx_count(),
    ) {
        (true, Some(hash), Some(header), Some(tx_count)) => Ok(ChunkedBlock {
            hash,
            header: *header,
            size: chunker.block_size(),
            tx_count,
            num_chunks: chunker.num_chunks(),
        }),
        _ => Err(incomplete(chunker.position())),
    }
}

#[cfg(test)]
#[path = "block_stream_tests.rs"]
mod tests;
