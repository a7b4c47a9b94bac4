//! Transaction ids and merkle roots, to check offsets end to end: slice each
//! transaction at its offsets, hash it, rebuild the root, compare with the header.

use super::txscan::WitnessLayout;
use crate::hash::{sha256d, sha256d_batch, Message};

/// What a txid hashes: the serialisation of `tx` without witness. For a
/// segwit transaction `witness_start` is the offset (within `tx`) where its
/// witness data begins; the marker and flag (bytes 4 and 5) and the witness
/// are left out, without copying the rest.
pub fn txid_message(tx: &[u8], witness_start: Option<usize>) -> Message<'_> {
    match witness_start {
        Some(ws) if tx.len() >= 10 && (6..=tx.len() - 4).contains(&ws) => {
            Message::from_parts(&tx[..4], &tx[6..ws], &tx[tx.len() - 4..])
        }
        _ => Message::new(tx),
    }
}

/// The txid of one transaction: double SHA-256 of `txid_message`.
pub fn txid(tx: &[u8], witness_start: Option<usize>) -> [u8; 32] {
    let mut out = [[0u8; 32]];
    sha256d_batch([txid_message(tx, witness_start)], &mut out);
    out[0]
}

/// Txids of consecutive transactions: `data` starts at absolute offset
/// `base`, `offsets` are absolute, the last transaction ends at the end of
/// `data`, and `witness` lists the segwit transactions among them (absolute
/// `witness_start`, `tx_index` counted from `first_index`). Hashed as one
/// batch (`hash::batch`: several transactions at once).
pub fn txids(
    data: &[u8],
    base: u64,
    offsets: &[u64],
    first_index: u64,
    witness: &[WitnessLayout],
) -> Vec<[u8; 32]> {
    let end = base + data.len() as u64;
    let mut witness = witness.iter().peekable();
    let messages = offsets.iter().enumerate().map(|(k, &start)| {
        let stop = offsets.get(k + 1).copied().unwrap_or(end);
        let tx = &data[(start - base) as usize..(stop - base) as usize];
        let index = first_index + k as u64;
        let ws = match witness.peek() {
            Some(w) if w.tx_index == index => {
                let ws = (w.witness_start - start) as usize;
                witness.next();
                Some(ws)
            }
            _ => None,
        };
        txid_message(tx, ws)
    });
    let mut ids = vec![[0u8; 32]; offsets.len()];
    sha256d_batch(messages, &mut ids);
    ids
}

/// Bitcoin's merkle root: pairs hashed with double SHA-256, the last hash of
/// an odd level paired with itself. `None` for no hashes.
pub fn merkle_root(hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
    if hashes.is_empty() {
        return None;
    }
    let mut level = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let mut cat = [0u8; 64];
                cat[..32].copy_from_slice(&pair[0]);
                cat[32..].copy_from_slice(pair.get(1).unwrap_or(&pair[0]));
                sha256d(&cat)
            })
            .collect();
    }
    Some(level[0])
}
