//! Unit tests of `framing`, kept beside it so the module reads in one sitting.

use super::*;

const MAGIC: [u8; 4] = [0xda, 0xb5, 0xbf, 0xfa];
const LIMITS: DecoderLimits = DecoderLimits {
    max_payload: 1 << 20,
    large_threshold: 1000,
};

fn decode_all(stream: &[u8], piece: usize) -> Result<Vec<Event>, (FramingError, u64)> {
    let mut d = MessageDecoder::new(MAGIC, LIMITS);
    let mut out = Vec::new();
    for p in stream.chunks(piece.max(1)) {
        let mut events = Vec::new();
        d.feed(p, &mut events)?;
        out.extend(events.into_iter().map(|e| owned(e, p)));
    }
    Ok(out)
}

fn owned(event: Event, input: &[u8]) -> Event {
    match event {
        Event::Message { command, payload } => Event::Message {
            command,
            payload: Bytes::Owned(payload.resolve(input).to_vec()),
        },
        Event::LargePiece(b) => Event::LargePiece(Bytes::Owned(b.resolve(input).to_vec())),
        other => other,
    }
}

#[test]
fn verack_has_the_well_known_header() {
    let m = encode_message([0xf9, 0xbe, 0xb4, 0xd9], "verack", b"").unwrap();
    assert_eq!(hex(&m), "f9beb4d976657261636b000000000000000000005df6e0e2");
}

#[test]
fn messages_round_trip_in_any_piece_size() {
    let mut stream = encode_message(MAGIC, "ping", &[7u8; 8]).unwrap();
    stream.extend(encode_message(MAGIC, "verack", b"").unwrap());
    stream.extend(encode_message(MAGIC, "block", &[1u8; 2500]).unwrap());
    for piece in [1, 2, 7, 24, 100, 5000] {
        let events = decode_all(&stream, piece).unwrap();
        assert_eq!(
            events[0],
            Event::Message {
                command: "ping".into(),
                payload: Bytes::Owned(vec![7u8; 8])
            }
        );
        assert_eq!(
            events[1],
            Event::Message {
                command: "verack".into(),
                payload: Bytes::Owned(vec![])
            }
        );
        assert_eq!(
            events[2],
            Event::LargeStart {
                command: "block".into(),
                length: 2500
            }
        );
        let body: Vec<u8> = events[3..events.len() - 1]
            .iter()
            .flat_map(|e| match e {
                Event::LargePiece(p) => p.resolve(&[]).to_vec(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(body, vec![1u8; 2500]);
        assert!(matches!(
            events.last(),
            Some(Event::LargeEnd { length: 2500, .. })
        ));
    }
}

#[test]
fn errors_are_distinct() {
    let good = encode_message(MAGIC, "ping", &[0u8; 8]).unwrap();
    let mut wrong_magic = good.clone();
    wrong_magic[0] ^= 1;
    assert!(matches!(
        decode_all(&wrong_magic, 100),
        Err((FramingError::BadMagic { .. }, 0))
    ));
    let mut bad_sum = good.clone();
    bad_sum[30] ^= 1;
    assert!(matches!(
        decode_all(&bad_sum, 3),
        Err((FramingError::BadChecksum { .. }, 0))
    ));
    let mut bad_cmd = good.clone();
    bad_cmd[9] = b'x'; // a letter after the NUL padding began
    assert!(matches!(
        decode_all(&bad_cmd, 100),
        Err((FramingError::BadCommand { .. }, 0))
    ));
    let huge = encode_header(MAGIC, "block", 2 << 20, [0; 4]).unwrap();
    assert!(matches!(
        decode_all(&huge, 100),
        Err((FramingError::PayloadTooLarge { .. }, 0))
    ));
}

#[test]
fn extended_header_carries_a_64_bit_length() {
    let h = encode_header(MAGIC, "block", 5 << 30, [9; 4]).unwrap();
    assert_eq!(h.len(), EXT_HEADER_LEN);
    let mut d = MessageDecoder::new(
        MAGIC,
        DecoderLimits {
            max_payload: u64::MAX,
            large_threshold: 1 << 20,
        },
    );
    let mut out = Vec::new();
    d.feed(&h, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Event::LargeStart {
            command: "block".into(),
            length: 5 << 30
        }]
    );
}

#[test]
fn a_failed_decoder_stays_failed() {
    let mut d = MessageDecoder::new(MAGIC, LIMITS);
    let mut out = Vec::new();
    assert!(d.feed(b"\0\0\0\0", &mut out).is_err());
    let good = encode_message(MAGIC, "ping", &[0u8; 8]).unwrap();
    assert!(d.feed(&good, &mut out).is_err());
}

#[test]
fn an_extended_header_for_a_small_payload_is_refused() {
    // the header encode_header would give a 4 GiB payload, with the length cut to 8
    let mut h = encode_header(MAGIC, "ping", u64::from(EXT_LENGTH_MARKER), [0; 4]).unwrap();
    h[36..44].copy_from_slice(&8u64.to_le_bytes());
    let mut d = MessageDecoder::new(MAGIC, LIMITS);
    let mut out = Vec::new();
    let (err, at) = d.feed(&h, &mut out).unwrap_err();
    assert!(
        matches!(err, FramingError::BadExtendedHeader { .. }),
        "{err}"
    );
    assert_eq!((at, out.len()), (0, 0));
    // the smallest payload that needs it is accepted
    let h = encode_header(MAGIC, "block", u64::from(EXT_LENGTH_MARKER), [0; 4]).unwrap();
    let mut d = MessageDecoder::new(
        MAGIC,
        DecoderLimits {
            max_payload: u64::MAX,
            large_threshold: 1 << 20,
        },
    );
    d.feed(&h, &mut out).unwrap();
    assert_eq!(out.len(), 1);
}
