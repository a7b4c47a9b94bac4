//! Tests of the scanner, chunk splitter and merkle code on the real blocks in
//! `../shared/data` (blkNNNNN.dat layout: magic, length, block). The strongest
//! check of offsets there is: hash each transaction they delimit, rebuild the
//! merkle root, compare with the header.

use super::chunker::BlockChunker;
use super::merkle::{merkle_root, txids};
use super::txscan::{scan_block, TxScanner};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

fn blocks_of(file: &str) -> Vec<Vec<u8>> {
    let raw = std::fs::read(data_dir().join(file)).expect("shared test data");
    let mut blocks = Vec::new();
    let mut i = 0;
    while i + 8 <= raw.len() {
        let len = u32::from_le_bytes(raw[i + 4..i + 8].try_into().unwrap()) as usize;
        blocks.push(raw[i + 8..i + 8 + len].to_vec());
        i += 8 + len;
    }
    blocks
}

fn all_blocks() -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for f in [
        "blk_0_to_4.dat",
        "blk_3A.dat",
        "blk_4A.dat",
        "blk_5A.dat",
        "blocks1-256",
        "277647.dat",
    ] {
        all.extend(blocks_of(f));
    }
    all.push(std::fs::read(data_dir().join("testnet_block.raw")).unwrap());
    all
}

fn root_matches(block: &[u8], offsets: &[u64], witness: &[super::txscan::WitnessLayout]) -> bool {
    let ids = txids(
        &block[offsets[0] as usize..],
        offsets[0],
        offsets,
        0,
        witness,
    );
    merkle_root(&ids).unwrap()[..] == block[36..68]
}

#[test]
fn every_real_block_rebuilds_its_merkle_root() {
    let blocks = all_blocks();
    assert_eq!(blocks.len(), 5 + 3 + 255 + 1 + 1);
    for block in &blocks {
        let (offsets, witness) = scan_block(block, true).unwrap();
        assert!(root_matches(block, &offsets, &witness));
    }
}

#[test]
fn one_byte_at_a_time_gives_the_same_offsets() {
    for block in all_blocks().iter().step_by(7) {
        let (whole, _) = scan_block(block, true).unwrap();
        let mut s = TxScanner::for_block(Some(block.len() as u64), true);
        for b in block {
            s.feed(std::slice::from_ref(b)).unwrap();
        }
        s.finish().unwrap();
        assert_eq!(s.offsets(), &whole[..]);
    }
}

#[test]
fn chunks_cover_the_block_and_follow_the_rule() {
    let block = &blocks_of("277647.dat")[0];
    let (offsets, _) = scan_block(block, true).unwrap();
    for chunk_size in [1000u64, 4096, 50_000, 1 << 20] {
        for piece in [1usize, 333, 65536] {
            let mut c = BlockChunker::new(block.len() as u64, chunk_size, true).unwrap();
            let mut chunks = Vec::new();
            for p in block.chunks(piece) {
                chunks.extend(c.feed(p).unwrap());
                assert!(c.buffered() as u64 <= chunk_size + 70_000);
            }
            let n = (block.len() as u64).div_ceil(chunk_size);
            assert_eq!(chunks.len() as u64, n);
            let mut all_offsets = Vec::new();
            let mut data = Vec::new();
            for (k, ch) in chunks.iter().enumerate() {
                let m = &ch.meta;
                assert_eq!(m.chunk_num, k as u64);
                assert_eq!(m.first_tx_index, all_offsets.len() as u64);
                let cut = ((k as u64 + 1) * chunk_size).min(block.len() as u64);
                // every transaction of chunk k ends within the first (k+1)·C bytes
                let end = m.start + ch.data.len() as u64;
                assert!(end <= cut);
                all_offsets.extend_from_slice(&m.tx_offsets);
                data.extend_from_slice(&ch.data);
            }
            assert_eq!(all_offsets, offsets);
            assert_eq!(&data[..], &block[offsets[0] as usize..]);
        }
    }
}
