//! Bitcoin P2P message framing: the 24-byte header (magic, command, length,
//! checksum) and Bitcoin SV's 44-byte extended header for payloads of 4 GiB and
//! more (command `extmsg`, length 0xFFFFFFFF, zero checksum, then the real
//! command and a 64-bit length; BSV's "Large message support" spec).
//!
//! `MessageDecoder` is a push decoder: bytes in, events out. The checksum is
//! computed as payload bytes arrive (never a second pass), limits are checked
//! when the header is complete and before anything is allocated for the
//! payload, and payloads at or above the large-message threshold are handed on
//! in pieces as they arrive instead of being buffered whole.

use crate::error::KernelError;
use crate::hash::{finish_sha256d, sha256d};
use sha2::{Digest, Sha256};
use std::fmt;

pub const HEADER_LEN: usize = 24;
/// 24-byte header + 12-byte command + 8-byte length (BSV extended header).
pub const EXT_HEADER_LEN: usize = 44;
pub const COMMAND_LEN: usize = 12;
pub const EXTMSG: &[u8; COMMAND_LEN] = b"extmsg\0\0\0\0\0\0";
/// The length field value that announces an extended header.
pub const EXT_LENGTH_MARKER: u32 = 0xFFFF_FFFF;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    BadMagic {
        expected: [u8; 4],
        got: [u8; 4],
    },
    BadChecksum {
        command: String,
        expected: [u8; 4],
        got: [u8; 4],
    },
    PayloadTooLarge {
        command: String,
        length: u64,
        max: u64,
    },
    BadCommand {
        raw: Vec<u8>,
    },
    BadExtendedHeader {
        reason: &'static str,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { expected, got } => write!(
                f,
                "wrong network magic {} (expected {})",
                hex(got),
                hex(expected)
            ),
            Self::BadChecksum {
                command,
                expected,
                got,
            } => write!(
                f,
                "bad checksum for '{command}': header says {}, payload hashes to {}",
                hex(expected),
                hex(got)
            ),
            Self::PayloadTooLarge {
                command,
                length,
                max,
            } => write!(
                f,
                "'{command}' payload of {length} bytes exceeds the maximum of {max}"
            ),
            Self::BadCommand { raw } => write!(f, "malformed command field {}", hex(raw)),
            Self::BadExtendedHeader { reason } => write!(f, "malformed extended header: {reason}"),
        }
    }
}

impl KernelError for FramingError {
    fn py_class(&self) -> &'static str {
        match self {
            Self::BadMagic { .. } => "BadMagicError",
            Self::BadChecksum { .. } => "ChecksumError",
            Self::PayloadTooLarge { .. } => "PayloadTooLargeError",
            Self::BadCommand { .. } => "MalformedCommandError",
            Self::BadExtendedHeader { .. } => "MalformedMessageError",
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse a 12-byte command field: printable ASCII (0x20..=0x7E) then NUL
/// padding only, as Bitcoin Core's `CMessageHeader::IsCommandValid`; unlike
/// Core we also reject the empty command, which nothing can dispatch.
pub fn parse_command(field: &[u8]) -> Result<String, FramingError> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (name, padding) = field.split_at(end);
    let valid = !name.is_empty()
        && name.iter().all(|&b| (0x20..=0x7E).contains(&b))
        && padding.iter().all(|&b| b == 0);
    if !valid {
        return Err(FramingError::BadCommand {
            raw: field.to_vec(),
        });
    }
    // only printable ASCII here, so this is valid UTF-8
    Ok(name.iter().map(|&b| b as char).collect())
}

/// The 12-byte NUL-padded command field for `command`.
pub fn command_field(command: &str) -> Result<[u8; COMMAND_LEN], FramingError> {
    let bytes = command.as_bytes();
    let mut field = [0u8; COMMAND_LEN];
    if bytes.is_empty() || bytes.len() > COMMAND_LEN {
        return Err(FramingError::BadCommand {
            raw: bytes.to_vec(),
        });
    }
    field[..bytes.len()].copy_from_slice(bytes);
    parse_command(&field)?;
    Ok(field)
}

/// Does a payload of this length need BSV's extended header?
pub fn needs_extended_header(length: u64) -> bool {
    length >= u64::from(EXT_LENGTH_MARKER)
}

/// The header for a payload of `length` bytes: 24 bytes, or 44 with the
/// extended form (whose checksum is zero: it is not computed for such payloads).
pub fn encode_header(
    magic: [u8; 4],
    command: &str,
    length: u64,
    checksum: [u8; 4],
) -> Result<Vec<u8>, FramingError> {
    let field = command_field(command)?;
    let mut out = Vec::with_capacity(EXT_HEADER_LEN);
    out.extend_from_slice(&magic);
    if needs_extended_header(length) {
        out.extend_from_slice(EXTMSG);
        out.extend_from_slice(&EXT_LENGTH_MARKER.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&field);
        out.extend_from_slice(&length.to_le_bytes());
    } else {
        out.extend_from_slice(&field);
        out.extend_from_slice(&(length as u32).to_le_bytes());
        out.extend_from_slice(&checksum);
    }
    Ok(out)
}

/// A whole message: header, then payload.
pub fn encode_message(
    magic: [u8; 4],
    command: &str,
    payload: &[u8],
) -> Result<Vec<u8>, FramingError> {
    let checksum = if needs_extended_header(payload.len() as u64) {
        [0u8; 4]
    } else {
        checksum_of(payload)
    };
    let mut out = encode_header(magic, command, payload.len() as u64, checksum)?;
    out.reserve_exact(payload.len());
    out.extend_from_slice(payload);
    Ok(out)
}

/// First four bytes of the double SHA-256 of the payload.
pub fn checksum_of(payload: &[u8]) -> [u8; 4] {
    let h = sha256d(payload);
    [h[0], h[1], h[2], h[3]]
}

/// Bytes an event carries: either a range of the input given to the `feed`
/// call that produced the event (no copy: the payload arrived whole in that
/// input, or it is a piece of a large payload), or bytes the decoder
/// assembled across several `feed` calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bytes {
    Input(std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl Bytes {
    /// The bytes, given the input of the `feed` call that produced them.
    pub fn resolve<'a>(&'a self, input: &'a [u8]) -> &'a [u8] {
        match self {
            Bytes::Input(range) => &input[range.clone()],
            Bytes::Owned(v) => v,
        }
    }
}

/// What the decoder produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete message under the large-message threshold.
    Message { command: String, payload: Bytes },
    /// A large message begins; its payload follows as `LargePiece`s.
    LargeStart { command: String, length: u64 },
    /// The next bytes of the current large payload, in order.
    LargePiece(Bytes),
    /// The large payload is complete (and its checksum, if it has one, verified).
    LargeEnd { command: String, length: u64 },
}

// One decoder per connection: the payload state lives inline rather than in a
// box allocated per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum State {
    Header,
    Payload(Payload),
}

#[derive(Debug)]
struct Payload {
    command: String,
    length: u64,
    received: u64,
    /// None for extended messages, which carry no checksum.
    checksum: Option<([u8; 4], Sha256)>,
    /// None when the payload is handed on in pieces.
    buffer: Option<Vec<u8>>,
    /// Where the payload is when it arrived whole in one input.
    whole_in_input: Option<std::ops::Range<usize>>,
}

#[derive(Debug, Clone, Copy)]
pub struct DecoderLimits {
    /// Largest payload accepted at all.
    pub max_payload: u64,
    /// Payloads of this size or more are streamed as pieces.
    pub large_threshold: u64,
}

/// A push decoder for a stream of messages on one connection.
#[derive(Debug)]
pub struct MessageDecoder {
    magic: [u8; 4],
    limits: DecoderLimits,
    header: [u8; EXT_HEADER_LEN],
    header_have: usize,
    state: State,
    /// Stream offset of the first byte of the message being decoded.
    message_start: u64,
    /// Total bytes consumed.
    consumed: u64,
    failed: Option<(FramingError, u64)>,
}

impl MessageDecoder {
    pub fn new(magic: [u8; 4], limits: DecoderLimits) -> Self {
        Self {
            magic,
            limits,
            header: [0; EXT_HEADER_LEN],
            header_have: 0,
            state: State::Header,
            message_start: 0,
            consumed: 0,
            failed: None,
        }
    }

    /// Bytes consumed so far on the stream.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// True between messages (nothing partial is held).
    pub fn at_boundary(&self) -> bool {
        self.header_have == 0 && matches!(self.state, State::Header)
    }

    /// Feed bytes; events are appended to `out`. After an error the stream
    /// cannot be resynchronised, so every later call returns the same error.
    /// The `u64` with an error is the stream offset of the offending message.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), (FramingError, u64)> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        let mut at = 0;
        while at < data.len() {
            let used = match self.step(data, at, out) {
                Ok(used) => used,
                Err(err) => {
                    let failed = (err, self.message_start);
                    self.failed = Some(failed.clone());
                    return Err(failed);
                }
            };
            self.consumed += used as u64;
            at += used;
        }
        Ok(())
    }

    /// Consume a prefix of `input[at..]`; returns how many bytes were used.
    fn step(
        &mut self,
        input: &[u8],
        at: usize,
        out: &mut Vec<Event>,
    ) -> Result<usize, FramingError> {
        let data = &input[at..];
        match &mut self.state {
            State::Header => self.take_header(data, out),
            State::Payload(p) => {
                let want = p.length - p.received;
                let n = want.min(data.len() as u64) as usize;
                let piece = &data[..n];
                if let Some((_, hasher)) = &mut p.checksum {
                    hasher.update(piece);
                }
                let range = at..at + n;
                match &mut p.buffer {
                    // The whole payload is in this input: hand it on as a
                    // range of the input instead of copying it.
                    Some(buffer) if p.received == 0 && n as u64 == p.length => {
                        p.whole_in_input = Some(range);
                        buffer.clear();
                    }
                    Some(buffer) => {
                        if buffer.capacity() == 0 {
                            // the length passed the limit check in begin_payload
                            buffer.reserve_exact(p.length as usize);
                        }
                        buffer.extend_from_slice(piece)
                    }
                    None => out.push(Event::LargePiece(Bytes::Input(range))),
                }
                p.received += n as u64;
                if p.received == p.length {
                    self.finish_payload(out)?;
                }
                Ok(n)
            }
        }
    }

    fn take_header(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<usize, FramingError> {
        let start = self.header_have;
        let need = if start >= HEADER_LEN && self.header[4..16] == *EXTMSG {
            EXT_HEADER_LEN
        } else {
            HEADER_LEN
        };
        let n = (need - start).min(data.len());
        self.header[start..start + n].copy_from_slice(&data[..n]);
        self.header_have += n;
        if start == 0 {
            self.message_start = self.consumed;
        }
        // The magic is checked as soon as its four bytes are in, so a peer on
        // the wrong network is caught before it sends a whole header.
        if start < 4 && self.header_have >= 4 && self.header[..4] != self.magic {
            let mut got = [0u8; 4];
            got.copy_from_slice(&self.header[..4]);
            return Err(FramingError::BadMagic {
                expected: self.magic,
                got,
            });
        }
        if self.header_have < need {
            return Ok(n);
        }
        if need == HEADER_LEN && self.header[4..16] == *EXTMSG {
            self.check_extended_marker()?;
            return Ok(n); // 20 more header bytes to come
        }
        self.begin_payload(need == EXT_HEADER_LEN, out)?;
        Ok(n)
    }

    fn check_extended_marker(&self) -> Result<(), FramingError> {
        let length = u32::from_le_bytes(self.header[16..20].try_into().unwrap_or([0; 4]));
        if length != EXT_LENGTH_MARKER {
            return Err(FramingError::BadExtendedHeader {
                reason: "length field is not 0xFFFFFFFF",
            });
        }
        if self.header[20..24] != [0u8; 4] {
            return Err(FramingError::BadExtendedHeader {
                reason: "checksum field is not zero",
            });
        }
        Ok(())
    }

    fn begin_payload(&mut self, extended: bool, out: &mut Vec<Event>) -> Result<(), FramingError> {
        let h = &self.header;
        let (command, length, checksum) = if extended {
            let command = parse_command(&h[24..36])?;
            let mut len = [0u8; 8];
            len.copy_from_slice(&h[36..44]);
            (command, u64::from_le_bytes(len), None)
        } else {
            let command = parse_command(&h[4..16])?;
            let mut len = [0u8; 4];
            len.copy_from_slice(&h[16..20]);
            let mut sum = [0u8; 4];
            sum.copy_from_slice(&h[20..24]);
            (command, u64::from(u32::from_le_bytes(len)), Some(sum))
        };
        // BSV's large-message specification: the extended header is for
        // payloads the 32-bit length cannot hold; a small payload behind it is
        // a peer probing our decoder, not a message any node sends.
        if extended && !needs_extended_header(length) {
            return Err(FramingError::BadExtendedHeader {
                reason: "a payload the 32-bit length can hold",
            });
        }
        if length > self.limits.max_payload {
            return Err(FramingError::PayloadTooLarge {
                command,
                length,
                max: self.limits.max_payload,
            });
        }
        let large = length >= self.limits.large_threshold;
        if large {
            out.push(Event::LargeStart {
                command: command.clone(),
                length,
            });
        }
        self.header_have = 0;
        self.state = State::Payload(Payload {
            command,
            length,
            received: 0,
            checksum: checksum.map(|sum| (sum, Sha256::new())),
            // Allocated lazily (a payload that arrives whole in one input is
            // never copied) and only after the limit check.
            buffer: (!large).then(Vec::new),
            whole_in_input: None,
        });
        if length == 0 {
            self.finish_payload(out)?;
        }
        Ok(())
    }

    fn finish_payload(&mut self, out: &mut Vec<Event>) -> Result<(), FramingError> {
        let State::Payload(p) = std::mem::replace(&mut self.state, State::Header) else {
            return Ok(());
        };
        if let Some((expected, hasher)) = p.checksum {
            let digest = finish_sha256d(hasher);
            let got = [digest[0], digest[1], digest[2], digest[3]];
            if got != expected {
                return Err(FramingError::BadChecksum {
                    command: p.command,
                    expected,
                    got,
                });
            }
        }
        out.push(match p.buffer {
            Some(buffer) => Event::Message {
                command: p.command,
                payload: match p.whole_in_input {
                    Some(range) => Bytes::Input(range),
                    None => Bytes::Owned(buffer),
                },
            },
            None => Event::LargeEnd {
                command: p.command,
                length: p.length,
            },
        });
        Ok(())
    }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
