use super::*;

const MAX: usize = 1024;

/// Decode everything in `data`, feeding it in pieces of `piece` bytes.
fn decode_all(data: &[u8], piece: usize) -> Result<Vec<Frame>, FrameError> {
    let mut dec = FrameDecoder::new(MAX);
    let mut frames = Vec::new();
    for chunk in data.chunks(piece.max(1)) {
        let mut pos = 0;
        while pos < chunk.len() {
            let (used, frame) = dec.decode(&chunk[pos..])?;
            pos += used;
            frames.extend(frame);
        }
    }
    dec.finish()?;
    Ok(frames)
}

#[test]
fn round_trip_in_any_piece_size() {
    let mut wire = Vec::new();
    encode_into(&mut wire, "a::dm:b-profile", b"hello", MAX).unwrap();
    encode_into(&mut wire, "", b"", MAX).unwrap();
    encode_into(&mut wire, &"c".repeat(255), &[7u8; MAX], MAX).unwrap();
    for piece in [1, 2, 3, 5, 7, 64, wire.len()] {
        let frames = decode_all(&wire, piece).unwrap();
        assert_eq!(frames.len(), 3, "piece {piece}");
        assert_eq!(frames[0].channel, "a::dm:b-profile");
        assert_eq!(frames[0].payload, b"hello");
        assert_eq!(
            frames[1],
            Frame {
                channel: String::new(),
                payload: vec![]
            }
        );
        assert_eq!(frames[2].channel.len(), 255);
        assert_eq!(frames[2].payload.len(), MAX);
    }
}

#[test]
fn wire_layout_is_the_go_nodes() {
    let wire = encode("ch", b"xyz", MAX).unwrap();
    assert_eq!(wire, [0, 0, 0, 6, 2, b'c', b'h', b'x', b'y', b'z']);
}

#[test]
fn every_truncation_is_reported_with_what_is_missing() {
    let wire = encode("chan", b"payload", MAX).unwrap();
    for cut in 1..wire.len() {
        let err = decode_all(&wire[..cut], 1).unwrap_err();
        assert_eq!(
            err,
            FrameError::Truncated {
                missing: if cut < HEADER_LEN {
                    HEADER_LEN - cut
                } else {
                    wire.len() - cut
                }
            }
        );
        assert_eq!(err.reason(), "truncated_frame");
    }
    assert!(decode_all(&[], 1).unwrap().is_empty());
}

#[test]
fn oversized_length_is_refused_on_the_header_before_allocating() {
    let mut dec = FrameDecoder::new(MAX);
    // 4 GiB announced: refused after 5 bytes, without reserving anything.
    let err = dec.decode(&[0xff, 0xff, 0xff, 0xff, 0]).unwrap_err();
    assert!(matches!(
        err,
        FrameError::TooLarge {
            announced: 0xffff_ffff,
            ..
        }
    ));
    assert_eq!(err.reason(), "frame_too_large");
    assert_eq!(dec.body.capacity(), 0);
    // and the decoder stays failed
    assert_eq!(dec.decode(b"more").unwrap_err(), err);
    // one byte over the limit with the largest channel
    let total = (1 + 255 + MAX + 1) as u32;
    let mut hdr = total.to_be_bytes().to_vec();
    hdr.push(255);
    assert!(matches!(
        FrameDecoder::new(MAX).decode(&hdr),
        Err(FrameError::TooLarge { .. })
    ));
    // payload over the limit with a short channel also refused
    let total = (1 + MAX + 1) as u32;
    let mut hdr = total.to_be_bytes().to_vec();
    hdr.push(0);
    assert!(matches!(
        FrameDecoder::new(MAX).decode(&hdr),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn channel_longer_than_the_frame_is_refused() {
    let err = decode_all(&[0, 0, 0, 3, 200, b'a', b'b'], 64).unwrap_err();
    assert_eq!(
        err,
        FrameError::ChannelOverrun {
            channel_len: 200,
            total: 3
        }
    );
    assert_eq!(err.reason(), "bad_frame");
    assert_eq!(
        decode_all(&[0, 0, 0, 0, 0], 64).unwrap_err(),
        FrameError::Empty
    );
}

#[test]
fn non_utf8_channel_is_refused() {
    let err = decode_all(&[0, 0, 0, 3, 2, 0xff, 0xfe], 64).unwrap_err();
    assert_eq!(err, FrameError::BadChannel);
}

#[test]
fn garbage_never_panics_and_either_decodes_or_fails() {
    // A small deterministic generator (no rand dependency): xorshift.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut bytes = Vec::new();
        let len = (x % 64) as usize;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        let _ = decode_all(&bytes, (x % 7) as usize + 1);
    }
}

#[test]
fn encoder_refuses_what_the_decoder_would() {
    assert_eq!(
        encode(&"x".repeat(256), b"", MAX).unwrap_err(),
        FrameError::ChannelTooLong { len: 256 }
    );
    assert!(matches!(
        encode("c", &vec![0; MAX + 1], MAX),
        Err(FrameError::PayloadTooLarge { .. })
    ));
}
