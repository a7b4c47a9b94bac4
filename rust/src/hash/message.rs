//! A message to hash as the concatenation of up to three byte slices, and the
//! 64-byte blocks SHA-256 compresses for it (its bytes, then the padding:
//! 0x80, zeros, and the length in bits as a big-endian u64).
//!
//! Three slices because a segwit txid hashes the version, the body between
//! the marker and flag and the witness, and the lock time, without copying
//! them together. Most blocks lie whole inside one slice and are read where
//! they are; only the blocks that straddle two slices or hold the padding
//! are assembled into a buffer.

/// Bytes to hash: `parts[0] ++ parts[1] ++ parts[2]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Message<'a> {
    pub parts: [&'a [u8]; 3],
}

impl<'a> Message<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            parts: [data, &[], &[]],
        }
    }

    pub fn from_parts(first: &'a [u8], second: &'a [u8], third: &'a [u8]) -> Self {
        Self {
            parts: [first, second, third],
        }
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub const BLOCK_LEN: usize = 64;
/// The padding needs the 0x80 byte and the 8-byte length after the data.
const LENGTH_AT: usize = BLOCK_LEN - 8;
/// The longest message that is hashed in one block.
pub const ONE_BLOCK_MAX: usize = LENGTH_AT - 1;

/// The one padded block of a message of at most `ONE_BLOCK_MAX` bytes.
#[inline(always)]
pub fn one_block(message: &Message<'_>, block: &mut [u8; BLOCK_LEN]) {
    let len = message.len();
    assert!(len <= ONE_BLOCK_MAX);
    *block = [0; BLOCK_LEN];
    let mut n = 0;
    for part in message.parts {
        copy_short(&mut block[n..n + part.len()], part);
        n += part.len();
    }
    block[n] = 0x80;
    block[LENGTH_AT..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
}

/// Hands out the blocks of one message in order.
#[derive(Clone)]
pub struct MessageBlocks<'a> {
    /// What is left to read of the current slice, and the slices after it.
    rest: &'a [u8],
    later: [&'a [u8]; 2],
    later_used: usize,
    bits: u64,
    marked: bool,
    finished: bool,
    buf: [u8; BLOCK_LEN],
}

impl Default for MessageBlocks<'_> {
    fn default() -> Self {
        Self::new(Message::default())
    }
}

impl<'a> MessageBlocks<'a> {
    pub fn new(message: Message<'a>) -> Self {
        let mut blocks = Self {
            rest: &[],
            later: [&[], &[]],
            later_used: 0,
            bits: 0,
            marked: false,
            finished: false,
            buf: [0; BLOCK_LEN],
        };
        blocks.reset(message);
        blocks
    }

    /// Start over on another message (the buffer is not cleared: every
    /// assembled block overwrites all of it).
    #[inline(always)]
    pub fn reset(&mut self, message: Message<'a>) {
        let [first, second, third] = message.parts;
        self.rest = first;
        self.later = [second, third];
        self.later_used = 0;
        self.bits = (message.len() as u64).wrapping_mul(8);
        self.marked = false;
        self.finished = false;
    }

    /// Whether the last block (the one with the length) has been handed out.
    #[inline(always)]
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The next block: a pointer into the message when the block lies whole
    /// in one slice, else into this object's buffer. Valid until the next
    /// call or until `self` moves. Must not be called once `finished()`.
    #[inline(always)]
    pub fn next_block(&mut self) -> *const u8 {
        debug_assert!(!self.finished);
        if self.rest.len() >= BLOCK_LEN {
            let block = self.rest.as_ptr();
            self.rest = &self.rest[BLOCK_LEN..];
            return block;
        }
        self.assemble()
    }

    /// A block that straddles slices or holds the padding, built in `buf`.
    #[inline(never)]
    fn assemble(&mut self) -> *const u8 {
        // zero first: a fixed-size store, cheaper than filling after the data
        self.buf = [0; BLOCK_LEN];
        let mut n = 0;
        loop {
            let take = self.rest.len().min(BLOCK_LEN - n);
            copy_short(&mut self.buf[n..n + take], &self.rest[..take]);
            self.rest = &self.rest[take..];
            n += take;
            if !self.rest.is_empty() || n == BLOCK_LEN {
                // a full block of data (the slice may go on: it is read in place next)
                return self.buf.as_ptr();
            }
            if self.later_used == self.later.len() {
                break;
            }
            self.rest = self.later[self.later_used];
            self.later_used += 1;
            if self.rest.len() >= BLOCK_LEN && n == 0 {
                return self.next_block();
            }
        }
        if !self.marked {
            self.buf[n] = 0x80;
            n += 1;
            self.marked = true;
        }
        if n <= LENGTH_AT {
            self.buf[LENGTH_AT..].copy_from_slice(&self.bits.to_be_bytes());
            self.finished = true;
        }
        self.buf.as_ptr()
    }
}

/// `dst.copy_from_slice(src)` for at most 64 bytes, inline: two overlapping
/// fixed-size copies instead of a call to `memcpy` (most assembled blocks
/// copy a few dozen bytes, and the call cost more than the copy).
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    #[inline(always)]
    fn pair<const W: usize>(dst: &mut [u8], src: &[u8]) {
        let n = src.len();
        let head: [u8; W] = src[..W].try_into().unwrap();
        let tail: [u8; W] = src[n - W..].try_into().unwrap();
        dst[..W].copy_from_slice(&head);
        dst[n - W..].copy_from_slice(&tail);
    }
    assert!(dst.len() == src.len() && src.len() <= BLOCK_LEN);
    match src.len() {
        32.. => pair::<32>(dst, src),
        16.. => pair::<16>(dst, src),
        8.. => pair::<8>(dst, src),
        4.. => pair::<4>(dst, src),
        0 => {}
        n => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
    }
}
