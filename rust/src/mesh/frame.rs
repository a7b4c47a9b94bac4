//! The `/unaiverse/chat/1.0.0` framing, as the Go agent nodes write it:
//!
//! ```text
//! u32 big-endian  total length = 1 + channel length + payload length
//! u8              channel length (so a channel is at most 255 bytes)
//! channel         UTF-8
//! payload         at most `max_payload` bytes (the Go nodes' limit is 50 MB)
//! ```
//!
//! A sans-I/O push decoder: [`FrameDecoder::decode`] takes the bytes read so
//! far and gives back how many it used and a frame when one completed. Every limit is checked on
//! the header, before the body is allocated, so a peer announcing 4 GiB costs
//! us five bytes of reading and a counted drop, not an allocation.

use std::fmt;

/// Size of the fixed part: the u32 length and the u8 channel length.
pub const HEADER_LEN: usize = 5;
/// A channel length is one byte on the wire.
pub const MAX_CHANNEL_LEN: usize = 255;
/// The Go nodes refuse payloads over 50 MB (their `maxMessageSize`).
pub const DEFAULT_MAX_PAYLOAD: usize = 50 * 1024 * 1024;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub channel: String,
    pub payload: Vec<u8>,
}

/// Why a frame was refused. `reason()` is the counter name Python sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The announced total length exceeds 1 + 255 + max payload.
    TooLarge { announced: u64, max: u64 },
    /// The total length is 0: there is not even a channel-length byte.
    Empty,
    /// The channel length byte points past the announced total length.
    ChannelOverrun { channel_len: usize, total: usize },
    /// The payload we were asked to send is over the limit.
    PayloadTooLarge { len: usize, max: usize },
    /// The channel we were asked to send is over 255 bytes.
    ChannelTooLong { len: usize },
    /// The channel bytes are not UTF-8.
    BadChannel,
    /// The stream ended inside a frame.
    Truncated { missing: usize },
}

impl FrameError {
    /// The drop reason reported in `MessagesDropped` and in the stats.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } | FrameError::PayloadTooLarge { .. } => "frame_too_large",
            FrameError::Truncated { .. } => "truncated_frame",
            _ => "bad_frame",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { announced, max } => {
                write!(f, "frame announces {announced} bytes, limit is {max}")
            }
            FrameError::Empty => f.write_str("frame length 0 has no channel-length byte"),
            FrameError::ChannelOverrun { channel_len, total } => {
                write!(
                    f,
                    "channel length {channel_len} exceeds frame length {total}"
                )
            }
            FrameError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes is over the limit of {max}")
            }
            FrameError::ChannelTooLong { len } => {
                write!(
                    f,
                    "channel of {len} bytes is over the limit of {MAX_CHANNEL_LEN}"
                )
            }
            FrameError::BadChannel => f.write_str("channel is not UTF-8"),
            FrameError::Truncated { missing } => {
                write!(f, "stream ended {missing} bytes before the end of a frame")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Encode one frame. Refuses what the peer's decoder would refuse.
pub fn encode(channel: &str, payload: &[u8], max_payload: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(&mut out, channel, payload, max_payload)?;
    Ok(out)
}

/// Append one frame to `out` (used to coalesce several frames into one write).
pub fn encode_into(
    out: &mut Vec<u8>,
    channel: &str,
    payload: &[u8],
    max_payload: usize,
) -> Result<(), FrameError> {
    if channel.len() > MAX_CHANNEL_LEN {
        return Err(FrameError::ChannelTooLong { len: channel.len() });
    }
    if payload.len() > max_payload {
        return Err(FrameError::PayloadTooLarge {
            len: payload.len(),
            max: max_payload,
        });
    }
    let total = 1 + channel.len() + payload.len();
    let total32 = u32::try_from(total).map_err(|_| FrameError::PayloadTooLarge {
        len: payload.len(),
        max: max_payload,
    })?;
    out.reserve(4 + total);
    out.extend_from_slice(&total32.to_be_bytes());
    out.push(channel.len() as u8); // checked <= 255 above
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

#[derive(Debug)]
enum State {
    /// Collecting the 5 header bytes.
    Header,
    /// Header accepted: `body` has capacity for channel + payload.
    Body { channel_len: usize, body_len: usize },
}

/// Incremental decoder for one stream. After an error it stays failed: the
/// caller resets the stream, there is no resynchronising inside a byte stream.
#[derive(Debug)]
pub struct FrameDecoder {
    max_payload: usize,
    state: State,
    header: [u8; HEADER_LEN],
    header_fill: usize,
    body: Vec<u8>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    pub fn new(max_payload: usize) -> Self {
        FrameDecoder {
            max_payload,
            state: State::Header,
            header: [0; HEADER_LEN],
            header_fill: 0,
            body: Vec::new(),
            failed: None,
        }
    }

    /// Consume bytes from `input` up to the end of at most one frame. Returns
    /// how many bytes were used and the frame if one completed; the caller
    /// calls again with the rest. Taking one frame at a time lets the caller
    /// stop between frames when Python is slow (that is the backpressure).
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Frame>), FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.step(input);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
            self.body = Vec::new();
        }
        result
    }

    /// True between frames (nothing of a frame has been read).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.header_fill == 0
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let missing = match self.state {
            State::Header if self.header_fill == 0 => return Ok(()),
            State::Header => HEADER_LEN - self.header_fill,
            State::Body {
                channel_len,
                body_len,
            } => channel_len + body_len - self.body.len(),
        };
        let err = FrameError::Truncated { missing };
        self.failed = Some(err.clone());
        Err(err)
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<Frame>), FrameError> {
        let mut used = 0;
        if let State::Header = self.state {
            let take = (HEADER_LEN - self.header_fill).min(input.len());
            self.header[self.header_fill..self.header_fill + take].copy_from_slice(&input[..take]);
            self.header_fill += take;
            used += take;
            if self.header_fill < HEADER_LEN {
                return Ok((used, None));
            }
            let (channel_len, body_len) = self.check_header()?;
            self.header_fill = 0;
            // Allocation only after the limits above passed.
            self.body = Vec::with_capacity(channel_len + body_len);
            self.state = State::Body {
                channel_len,
                body_len,
            };
        }
        let State::Body {
            channel_len,
            body_len,
        } = self.state
        else {
            return Ok((used, None));
        };
        let want = channel_len + body_len - self.body.len();
        let take = want.min(input.len() - used);
        self.body.extend_from_slice(&input[used..used + take]);
        used += take;
        if self.body.len() < channel_len + body_len {
            return Ok((used, None));
        }
        self.state = State::Header;
        let mut body = std::mem::take(&mut self.body);
        let payload = body.split_off(channel_len);
        let channel = String::from_utf8(body).map_err(|_| FrameError::BadChannel)?;
        Ok((used, Some(Frame { channel, payload })))
    }

    /// Validate the 5 header bytes; returns (channel length, payload length).
    fn check_header(&self) -> Result<(usize, usize), FrameError> {
        let h = &self.header;
        let total = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let max_total = 1 + MAX_CHANNEL_LEN as u64 + self.max_payload as u64;
        if u64::from(total) > max_total {
            return Err(FrameError::TooLarge {
                announced: u64::from(total),
                max: max_total,
            });
        }
        let total = total as usize;
        if total == 0 {
            return Err(FrameError::Empty);
        }
        let channel_len = h[4] as usize;
        if 1 + channel_len > total {
            return Err(FrameError::ChannelOverrun { channel_len, total });
        }
        let payload_len = total - 1 - channel_len;
        if payload_len > self.max_payload {
            return Err(FrameError::TooLarge {
                announced: total as u64,
                max: max_total,
            });
        }
        Ok((channel_len, payload_len))
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
