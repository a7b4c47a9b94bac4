//! Unit tests of `chord`, kept beside it so the module reads in one sitting.

use super::*;

/// Hex to bytes, for the digests copied from the FIPS 180 examples.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
        .collect()
}

/// A digest shifted left to fill 384 bits: the digest, then zero bytes.
fn left_aligned(hex: &str) -> RingId {
    let digest = unhex(hex);
    let mut id = [0u8; ID_BYTES];
    id[..digest.len()].copy_from_slice(&digest);
    id
}

/// A small number as a ring id.
fn id(n: u128) -> RingId {
    let mut out = [0u8; ID_BYTES];
    out[ID_BYTES - 16..].copy_from_slice(&n.to_be_bytes());
    out
}

fn flat(ids: &[RingId]) -> Vec<u8> {
    ids.concat()
}

#[test]
fn hashes_of_abc_match_the_fips_180_examples() {
    let h = hash_key(b"abc");
    assert_eq!(
        h.sha1,
        left_aligned("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    assert_eq!(
        h.sha224,
        left_aligned("23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7")
    );
    assert_eq!(
        h.sha256,
        left_aligned("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        h.sha384.to_vec(),
        unhex(
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163\
             1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        )
    );
    assert_eq!(
        h.sha512.to_vec(),
        unhex(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        )
    );
}

#[test]
fn hashes_of_the_empty_key_match_the_known_digests() {
    let h = hash_key(b"");
    assert_eq!(
        h.sha1,
        left_aligned("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(
        h.sha224,
        left_aligned("d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f")
    );
    assert_eq!(
        h.sha256,
        left_aligned("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(&h.sha384[..4], &[0x38, 0xb0, 0x60, 0xa7]);
    assert_eq!(&h.sha512[..4], &[0xcf, 0x83, 0xe1, 0x35]);
    assert_eq!(&h.sha512[60..], &[0xf9, 0x27, 0xda, 0x3e]);
}

#[test]
fn batch_rows_equal_the_hashes_of_each_key() {
    let keys: Vec<Vec<u8>> = vec![b"".to_vec(), b"abc".to_vec(), vec![0xff; 300]];
    let cols = hash_keys(&keys);
    assert_eq!(cols.sha1.len(), 3 * ID_BYTES);
    assert_eq!(cols.sha512.len(), 3 * SHA512_BYTES);
    for (i, key) in keys.iter().enumerate() {
        let h = hash_key(key);
        let row = i * ID_BYTES..(i + 1) * ID_BYTES;
        assert_eq!(&cols.sha1[row.clone()], &h.sha1);
        assert_eq!(&cols.sha224[row.clone()], &h.sha224);
        assert_eq!(&cols.sha256[row.clone()], &h.sha256);
        assert_eq!(&cols.sha384[row], &h.sha384);
        assert_eq!(
            &cols.sha512[i * SHA512_BYTES..(i + 1) * SHA512_BYTES],
            &h.sha512
        );
    }
    let none: [&[u8]; 0] = [];
    assert!(hash_keys(&none).sha384.is_empty());
}

#[test]
fn distance_wraps_around_the_full_ring() {
    assert_eq!(distance(&id(1), &id(0)), [0xff; ID_BYTES]); // 2^384 - 1
    assert_eq!(distance(&id(7), &id(7)), id(0));
    assert_eq!(distance(&id(0), &id(12345)), id(12345));
    // The borrow crosses a limb: 2^64 - 1 = 0x00..00_ffffffffffffffff.
    assert_eq!(distance(&id(1), &id(1 << 64)), id((1 << 64) - 1));
    // ... and every limb: from 2^384 - 1 to 0 is one step.
    assert_eq!(distance(&[0xff; ID_BYTES], &id(0)), id(1));
}

#[test]
fn distances_on_a_smaller_ring_wrap_at_the_limit() {
    let limit = id(10);
    let out = distances(
        &flat(&[id(7), id(3), id(9)]),
        &flat(&[id(3), id(7), id(9)]),
        Some(&limit),
    );
    assert_eq!(out, Ok(flat(&[id(6), id(4), id(0)])));
    // A ring one short of 2^384: from its last position to 0 is one step.
    let mut top = [0xff; ID_BYTES];
    top[ID_BYTES - 1] = 0xfe;
    let limit = [0xff; ID_BYTES];
    assert_eq!(distances(&top, &id(0), Some(&limit)), Ok(id(1).to_vec()));
}

#[test]
fn a_single_id_is_used_against_every_row() {
    let many = flat(&[id(1), id(5), id(100)]);
    assert_eq!(
        distances(&id(5), &many, None),
        Ok(flat(&[distance(&id(5), &id(1)), id(0), id(95)]))
    );
    assert_eq!(
        distances(&many, &id(5), Some(&id(200))),
        Ok(flat(&[id(4), id(0), id(105)]))
    );
    assert_eq!(distances(&[], &[], None), Ok(vec![]));
}

#[test]
fn distances_reject_bad_buffers_and_ids_outside_the_ring() {
    let two = flat(&[id(1), id(2)]);
    let three = flat(&[id(1), id(2), id(3)]);
    assert_eq!(
        distances(&two, &three, None),
        Err(RingIdError::CountMismatch {
            origins: 2,
            targets: 3
        })
    );
    assert_eq!(
        distances(&two[..47], &two, None),
        Err(RingIdError::Ragged {
            what: "origins",
            len: 47
        })
    );
    assert_eq!(
        distances(&two, &two, Some(&id(0))),
        Err(RingIdError::ZeroLimit)
    );
    let err = distances(&id(1), &three, Some(&id(3))).unwrap_err();
    assert_eq!(
        err,
        RingIdError::OutOfRange {
            what: "targets",
            index: 2
        }
    );
    assert_eq!(err.offset(), Some(2 * ID_BYTES as u64));
    assert_eq!(err.py_class(), "RingIdError");
    assert_eq!(
        distances(&id(3), &three, Some(&id(3))),
        Err(RingIdError::OutOfRange {
            what: "origins",
            index: 0
        })
    );
}

#[test]
fn closest_before_is_the_last_id_at_or_before_the_key() {
    let ids = flat(&[id(30), id(10), id(20)]);
    assert_eq!(closest_before(&ids, &id(25)), Ok(2));
    assert_eq!(closest_before(&ids, &id(20)), Ok(2)); // equal: distance 0 wins
    assert_eq!(closest_before(&ids, &id(19)), Ok(1));
    // Nothing at or before 5: wrap round to the largest id.
    assert_eq!(closest_before(&ids, &id(5)), Ok(0));
    assert_eq!(closest_before(&ids, &[0xff; ID_BYTES]), Ok(0));
}

#[test]
fn closest_before_breaks_ties_by_the_smallest_index() {
    let ids = flat(&[id(40), id(20), id(20), id(20)]);
    assert_eq!(closest_before(&ids, &id(25)), Ok(1));
    // Both at the largest distance there is, 2^384 - 1: the first must
    // still win, not lose to a "no candidate yet" sentinel.
    let ids = flat(&[id(1), id(1)]);
    assert_eq!(closest_before(&ids, &id(0)), Ok(0));
}

#[test]
fn closest_before_rejects_no_ids_and_ragged_buffers() {
    assert_eq!(closest_before(&[], &id(1)), Err(RingIdError::NoIds));
    assert_eq!(
        closest_before(&[0; 50], &id(1)),
        Err(RingIdError::Ragged {
            what: "ids",
            len: 50
        })
    );
}

/// Pseudo-random ids with the patterns that make a borrow ripple through
/// several limbs: equal leading limbs, equal ids, all-zero and all-ones
/// limbs, and ids one apart.
fn awkward_pairs(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed;
    let mut byte = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    let mut a: Vec<u8> = (0..n * ID_BYTES).map(|_| byte()).collect();
    let mut b: Vec<u8> = (0..n * ID_BYTES).map(|_| byte()).collect();
    for i in 0..n {
        let (ra, rb) = (i * ID_BYTES, (i + 1) * ID_BYTES);
        match i % 6 {
            // Same first k limbs: the borrow crosses those limbs.
            0 => {
                let k = 8 * (1 + i / 6 % 5);
                let head = a[ra..ra + k].to_vec();
                b[ra..ra + k].copy_from_slice(&head);
            }
            1 => b[ra..rb].copy_from_slice(&a[ra..rb]),
            // a = b + 1 with b's tail all ones: the result is 2^384 - 1.
            2 => {
                b[ra + 8..rb].fill(0xff);
                let mut id = [0u8; ID_BYTES];
                id.copy_from_slice(&b[ra..rb]);
                let plus_one = store(&add(&load(&id), &load(&self::id(1))));
                a[ra..rb].copy_from_slice(&plus_one);
            }
            3 => {
                a[ra + 8..rb].fill(0);
                b[ra + 8..rb].fill(0);
                a[rb - 1] = 1;
            }
            _ => {}
        }
    }
    (a, b)
}

fn scalar_full_ring(origins: &[u8], targets: &[u8], n: usize) -> Vec<u8> {
    rows_written_by(n, |out| {
        pair_up(origins, targets, 0, out, |a, b| sub(b, a).0)
    })
}

#[test]
fn the_simd_path_equals_the_scalar_path_including_rippling_borrows() {
    // Counts that are and are not multiples of the four-id group.
    for n in [0, 1, 2, 3, 4, 5, 7, 8, 63, 64, 65, 1001] {
        let (a, b) = awkward_pairs(n, 0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let expected = scalar_full_ring(&a, &b, n);
        assert_eq!(distances(&a, &b, None).unwrap(), expected, "n={n}");
        // Every row also equals the one-pair function.
        for (i, row) in expected.chunks_exact(ID_BYTES).enumerate() {
            let pick = |buf: &[u8]| <RingId>::try_from(&buf[i * ID_BYTES..(i + 1) * ID_BYTES]);
            assert_eq!(row, distance(&pick(&a).unwrap(), &pick(&b).unwrap()));
        }
        if n > 0 {
            // One id against many, both ways round.
            let one = &a[..ID_BYTES];
            assert_eq!(
                distances(one, &b, None).unwrap(),
                scalar_full_ring(one, &b, n),
                "one origin, n={n}"
            );
            assert_eq!(
                distances(&a, &b[..ID_BYTES], None).unwrap(),
                scalar_full_ring(&a, &b[..ID_BYTES], n),
                "one target, n={n}"
            );
        }
    }
}

#[test]
fn a_whole_group_of_rippling_borrows_is_right() {
    // Four pairs in one group, each with a borrow through five zero limbs.
    let mut a = Vec::new();
    let mut b = Vec::new();
    for k in 0..4u128 {
        a.extend_from_slice(&id(k + 1));
        b.extend_from_slice(&id(k));
    }
    let out = distances(&a, &b, None).unwrap();
    for row in out.chunks_exact(ID_BYTES) {
        assert!(row.iter().all(|&x| x == 0xff), "b - a = -1 is 2^384 - 1");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_simd_kernel_writes_every_whole_group_when_the_cpu_has_it() {
    let n = 203;
    let (a, b) = awkward_pairs(n, 7);
    let mut out = vec![MaybeUninit::new(0u8); n * ID_BYTES];
    let done = full_ring_simd(&a, &b, n, &mut out);
    // SAFETY: MaybeUninit<u8> and u8 have the same layout, and every byte
    // was initialised (to 0, or by the kernel).
    let out: Vec<u8> = out
        .into_iter()
        .map(|b| unsafe { b.assume_init() })
        .collect();
    if avx512::available() {
        assert_eq!(done, n / 4 * 4);
    } else {
        assert_eq!(done, 0);
    }
    let expected = scalar_full_ring(&a, &b, n);
    assert_eq!(out[..done * ID_BYTES], expected[..done * ID_BYTES]);
}
