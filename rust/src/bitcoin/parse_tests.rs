//! The parser on the real blocks (its txids rebuild each header's merkle
//! root), a block cut into chunks parses to the same columns, and refusals
//! are the preprocessor's.

use super::*;
use crate::bitcoin::merkle::merkle_root;
use crate::bitcoin::txscan::{scan_block, tx_offsets};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn real_blocks() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut all = Vec::new();
    for file in ["blk_0_to_4.dat", "blocks1-256", "277647.dat"] {
        let raw = std::fs::read(dir.join(file)).expect("shared test data");
        let mut i = 0;
        while i + 8 <= raw.len() {
            let len = u32::from_le_bytes([raw[i + 4], raw[i + 5], raw[i + 6], raw[i + 7]]) as usize;
            all.push(raw[i + 8..i + 8 + len].to_vec());
            i += 8 + len;
        }
    }
    all.push(std::fs::read(dir.join("testnet_block.raw")).expect("shared test data"));
    all
}

#[test]
fn real_blocks_rebuild_their_merkle_roots_and_mark_one_coinbase() {
    for block in real_blocks() {
        let cols = parse_block(&block, true).unwrap();
        assert_eq!(merkle_root(&cols.tx_txid).unwrap()[..], block[36..68]);
        assert_eq!(cols.tx_offset, tx_offsets(&block, true).unwrap());
        let total: u64 = cols.tx_size.iter().sum();
        assert_eq!(cols.tx_offset[0] + total, block.len() as u64);
        assert_eq!(cols.in_coinbase.iter().filter(|&&c| c).count(), 1);
        assert!(cols.in_coinbase[0] && cols.in_tx[0] == 0);
        // every transaction has inputs and outputs, rows in order
        let last = cols.num_txs() as u64 - 1;
        for rows in [&cols.in_tx, &cols.out_tx] {
            assert!(rows.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
            assert_eq!((rows[0], rows[rows.len() - 1]), (0, last));
        }
        for (k, &at) in cols.out_script_offset.iter().enumerate() {
            let script = &block[at as usize..(at + cols.out_script_len[k]) as usize];
            assert_eq!(
                cols.out_script_hash[k],
                <[u8; 32]>::from(Sha256::digest(script))
            );
        }
    }
}

#[test]
fn chunks_parse_to_the_columns_of_the_whole_block() {
    let block = real_blocks().pop().unwrap();
    let whole = parse_block(&block, true).unwrap();
    let offsets = &whole.tx_offset;
    let mut txids = Vec::new();
    let mut outputs = 0;
    for part in offsets.chunks(7) {
        let start = part[0] as usize;
        let stop = offsets
            .get(
                offsets
                    .iter()
                    .position(|&o| o == *part.last().unwrap())
                    .unwrap()
                    + 1,
            )
            .map_or(block.len(), |&o| o as usize);
        let cols = parse_transactions(&block[start..stop], part, true).unwrap();
        assert_eq!(cols.tx_offset, part);
        txids.extend(cols.tx_txid);
        outputs += cols.out_value.len();
    }
    assert_eq!(txids, whole.tx_txid);
    assert_eq!(outputs, whole.out_value.len());
}

#[test]
fn offsets_that_do_not_delimit_the_data_are_refused() {
    let block = real_blocks().pop().unwrap();
    let offsets = tx_offsets(&block, true).unwrap();
    let data = &block[offsets[0] as usize..];
    let mut wrong = offsets.clone();
    wrong[3] += 1;
    assert!(matches!(
        parse_transactions(data, &wrong, true),
        Err(ParseError::Offsets { .. })
    ));
    assert!(matches!(
        parse_transactions(data, &offsets[..offsets.len() - 1], true),
        Err(ParseError::Offsets { .. })
    ));
    assert!(matches!(
        parse_transactions(b"xyz", &[], true),
        Err(ParseError::Offsets { .. })
    ));
}

#[test]
fn every_prefix_gets_the_preprocessors_error() {
    let block = real_blocks().pop().unwrap();
    for cut in (0..block.len()).step_by(997) {
        let ours = parse_block(&block[..cut], true).unwrap_err();
        let theirs = scan_block(&block[..cut], true).unwrap_err();
        assert_eq!(ours, ParseError::Scan(theirs), "cut at {cut}");
    }
}

/// Time `parse_block` on the block in the file `$PARSE_BLOCK` (for perf:
/// `PARSE_BLOCK=... cargo test --release --lib parse_block_timed -- --ignored --nocapture`).
#[test]
#[ignore]
fn parse_block_timed() {
    let block = std::fs::read(std::env::var("PARSE_BLOCK").expect("PARSE_BLOCK")).unwrap();
    let mut times = Vec::new();
    for _ in 0..(1_000_000_000 / block.len()).clamp(9, 20_000) {
        let t = std::time::Instant::now();
        let cols = parse_block(&block, true).unwrap();
        drop(std::hint::black_box(cols));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "parse_block: median {median:.3} ms, best {:.3} ms",
        times[0]
    );
}
