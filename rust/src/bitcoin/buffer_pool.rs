//! Chunk buffers handed back for reuse.
//!
//! A 32 MiB chunk buffer is above glibc's largest mmap threshold, so every
//! fresh one is a new mapping whose pages fault in on first write: on this
//! project's VM that cost more than scanning the bytes (about 0.9 ms per MiB,
//! measured on a 100 MB block). A chunk's buffer is given back here when its
//! owner is done with it, and the splitter takes it for the next chunk, whose
//! pages are then already mapped.
//!
//! The pool is process-wide and small: it keeps at most `MAX_IDLE` buffers
//! (two covers a chunk being filled while the previous one is processed),
//! so idle memory after a large block is bounded by two chunk buffers.

use std::sync::Mutex;

/// Buffers kept when nobody uses them.
const MAX_IDLE: usize = 2;
/// Smaller buffers come cheaply from the allocator's heap; not worth keeping.
const MIN_POOLED: usize = 1 << 20;

/// A set of idle buffers; the splitter uses the process-wide `GLOBAL` one.
pub struct Pool {
    idle: Mutex<Vec<Vec<u8>>>,
}

pub static GLOBAL: Pool = Pool::new();

impl Pool {
    pub const fn new() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding the lock cannot leave the list inconsistent.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An empty buffer with room for at least `capacity` bytes: a pooled one
    /// if one is large enough (and not more than twice as large), else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity >= MIN_POOLED {
            let mut idle = self.idle();
            let fits = |b: &Vec<u8>| b.capacity() >= capacity && b.capacity() <= capacity * 2;
            if let Some(i) = idle.iter().position(fits) {
                let mut buf = idle.swap_remove(i);
                buf.clear();
                return buf;
            }
        }
        Vec::with_capacity(capacity)
    }

    /// Hand a buffer back; kept only if it is large and the pool has room.
    pub fn give(&self, buf: Vec<u8>) {
        if buf.capacity() < MIN_POOLED {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }

    /// Drop every idle buffer; returns the bytes freed.
    pub fn release_idle(&self) -> usize {
        let mut idle = self.idle();
        let bytes = idle.iter().map(Vec::capacity).sum();
        idle.clear();
        bytes
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_again_empty() {
        let pool = Pool::new();
        let mut a = pool.take(2 * MIN_POOLED);
        a.extend_from_slice(b"old bytes");
        let a_ptr = a.as_ptr();
        pool.give(a);
        let again = pool.take(2 * MIN_POOLED);
        assert_eq!(again.as_ptr(), a_ptr);
        assert!(again.is_empty());
    }

    #[test]
    fn small_buffers_are_not_kept_and_much_larger_ones_not_handed_out() {
        let pool = Pool::new();
        pool.give(Vec::with_capacity(16));
        assert_eq!(pool.release_idle(), 0);
        pool.give(Vec::with_capacity(4 * MIN_POOLED));
        assert_eq!(pool.take(MIN_POOLED).capacity(), MIN_POOLED);
        assert_eq!(pool.release_idle(), 4 * MIN_POOLED);
    }

    #[test]
    fn at_most_max_idle_buffers_are_kept() {
        let pool = Pool::new();
        for _ in 0..5 {
            pool.give(Vec::with_capacity(MIN_POOLED));
        }
        assert_eq!(pool.release_idle(), MAX_IDLE * MIN_POOLED);
    }
}
