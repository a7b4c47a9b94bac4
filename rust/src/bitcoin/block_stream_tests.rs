//! Unit tests of `block_stream`: a real block (from ../shared/data) framed
//! between small messages, fed in pieces of several sizes.

use super::*;
use crate::bitcoin::framing::encode_message;
use crate::bitcoin::merkle::{merkle_root, txids};
use crate::bitcoin::txscan::scan_block;
use std::path::PathBuf;

const MAGIC: [u8; 4] = [0xda, 0xb5, 0xbf, 0xfa];
const CHUNKING: Chunking = Chunking {
    chunk_size: 50_000,
    allow_witness: true,
    min_block_size: 0,
};

/// Block 277647 of the shared data: about 1 MB, many transactions.
fn real_block() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/277647.dat");
    let raw = std::fs::read(path).expect("shared test data");
    let len = u32::from_le_bytes(raw[4..8].try_into().unwrap()) as usize;
    raw[8..8 + len].to_vec()
}

fn stream_of(block: &[u8]) -> Vec<u8> {
    let mut stream = encode_message(MAGIC, "ping", &[7; 8]).unwrap();
    stream.extend(encode_message(MAGIC, "block", block).unwrap());
    stream.extend(encode_message(MAGIC, "pong", &[7; 8]).unwrap());
    stream
}

fn new_stream(chunking: Option<Chunking>) -> BlockStream {
    let limits = DecoderLimits {
        max_payload: 4 << 20,
        large_threshold: 100_000,
    };
    BlockStream::new(MAGIC, limits, chunking)
}

/// What came out, with the chunks' bytes and offsets gathered.
#[derive(Default)]
struct Seen {
    commands: Vec<String>,
    chunk_bytes: Vec<u8>,
    offsets: Vec<u64>,
    chunk_nums: Vec<u64>,
    hashes: Vec<[u8; 32]>,
    ends: Vec<ChunkedBlock>,
    pieces: usize,
}

fn run(stream: &mut BlockStream, bytes: &[u8], piece: usize) -> Result<Seen, StreamError> {
    let mut seen = Seen::default();
    for input in bytes.chunks(piece) {
        let mut out = Vec::new();
        let result = stream.feed(input, &mut out);
        for event in out {
            match event {
                StreamEvent::Frame(Event::Message { command, .. }) => seen.commands.push(command),
                StreamEvent::Frame(Event::LargeStart { command, .. }) => {
                    seen.commands.push(format!("start {command}"))
                }
                StreamEvent::Frame(Event::LargePiece(_)) => seen.pieces += 1,
                StreamEvent::Frame(Event::LargeEnd { command, .. }) => {
                    seen.commands.push(format!("end {command}"))
                }
                StreamEvent::Chunk { chunk, block_hash } => {
                    seen.hashes.push(block_hash);
                    seen.chunk_bytes.extend_from_slice(&chunk.data);
                    seen.offsets.extend(&chunk.meta.tx_offsets);
                    seen.chunk_nums.push(chunk.meta.chunk_num);
                }
                StreamEvent::BlockEnd(end) => seen.ends.push(end),
            }
        }
        result?;
    }
    Ok(seen)
}

#[test]
fn a_large_block_comes_out_as_chunks_between_the_other_messages() {
    let block = real_block();
    let (offsets, _) = scan_block(&block, true).unwrap();
    for piece in [1 << 20, 65_536, 4_099, 997] {
        let seen = run(&mut new_stream(Some(CHUNKING)), &stream_of(&block), piece).unwrap();
        assert_eq!(
            seen.commands,
            ["ping", "start block", "pong"],
            "piece {piece}"
        );
        assert_eq!(seen.pieces, 0, "no raw pieces of a chunked block");
        assert_eq!(seen.offsets, offsets);
        let n = (block.len() as u64).div_ceil(CHUNKING.chunk_size);
        assert_eq!(seen.chunk_nums, (0..n).collect::<Vec<_>>());
        // The chunks hold every transaction byte, in order, and nothing else.
        assert_eq!(seen.chunk_bytes, block[offsets[0] as usize..]);
        let [end] = &seen.ends[..] else {
            panic!("one block end")
        };
        assert_eq!(
            (end.size, end.tx_count, end.num_chunks),
            (block.len() as u64, offsets.len() as u64, n)
        );
        assert_eq!(end.header[..], block[..80]);
        let hash = crate::hash::sha256d(&block[..80]);
        assert_eq!(end.hash, hash);
        assert!(seen.hashes.iter().all(|&h| h == hash));
        let ids = txids(&block, 0, &offsets, 0, &[]);
        assert_eq!(merkle_root(&ids).unwrap()[..], block[36..68]);
    }
}

#[test]
fn without_chunking_or_below_its_minimum_the_block_comes_as_pieces() {
    let block = real_block();
    let above = Chunking {
        min_block_size: block.len() as u64 + 1,
        ..CHUNKING
    };
    for chunking in [None, Some(above)] {
        let seen = run(&mut new_stream(chunking), &stream_of(&block), 65_536).unwrap();
        assert_eq!(seen.commands, ["ping", "start block", "end block", "pong"]);
        assert!(seen.pieces > 1);
        assert!(seen.ends.is_empty() && seen.chunk_bytes.is_empty());
    }
}

#[test]
fn a_block_short_of_its_count_is_a_block_error_at_its_end_and_the_stream_stays_failed() {
    let mut block = real_block();
    // One more transaction announced than the block holds (the count is
    // one byte: 213).
    assert!(block[80] < 0xfc);
    block[80] += 1;
    let mut stream = new_stream(Some(CHUNKING));
    let err = run(&mut stream, &stream_of(&block), 65_536)
        .err()
        .expect("an error");
    assert!(matches!(err, StreamError::Block(_)), "{err:?}");
    assert_eq!(err.py_class(), "TxCountMismatchError");
    assert_eq!(err.offset(), Some(block.len() as u64));
    let again = stream.feed(b"more", &mut Vec::new()).unwrap_err();
    assert_eq!(again, err);
}

#[test]
fn a_bad_checksum_after_the_chunks_is_a_framing_error() {
    let block = real_block();
    let mut bytes = stream_of(&block);
    let ping_len = 24 + 8;
    bytes[ping_len + 20] ^= 1; // the block's checksum
    let err = run(&mut new_stream(Some(CHUNKING)), &bytes, 65_536)
        .err()
        .expect("an error");
    assert!(
        matches!(err, StreamError::Framing(FramingError::BadChecksum { .. }, at) if at == ping_len as u64)
    );
}
