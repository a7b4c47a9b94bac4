//! Bitcoin kernels: message framing, the transaction preprocessor, the chunk
//! splitter, transaction ids and merkle roots, and header checks.

pub mod block_stream;
pub mod buffer_pool;
pub mod chunker;
pub mod framing;
pub mod headers;
mod huge_pages;
pub mod merkle;
pub mod parse;
pub mod txscan;
pub mod txwalk;

#[cfg(test)]
mod real_data_tests;

pub use chunker::{BlockChunker, Chunk, ChunkBytes};
pub use txscan::{ScanError, TxScanner};
