//! What the node hands to Python, and the bounded queues it goes through.
//!
//! Two queues, both drained by the Python side:
//! - `events`: what the user reads (`next_events`). Data events (direct and
//!   topic messages) each hold a permit of a semaphore sized to the queue; a
//!   stream reader waits for a permit before it decodes the next frame, so a
//!   slow consumer stops our reads and yamux's flow control stops the sender.
//!   Messages that arrive from the swarm itself (pub/sub) cannot wait without
//!   stalling every connection: without a permit they are dropped and counted.
//!   Connection events take no permit (there are at most as many as
//!   connections) but are capped too.
//! - `control`: command replies and inbound requests for the node's own
//!   dispatcher. Each entry answers one command Python sent, and Python bounds
//!   its commands in flight, so it is bounded by construction; a hard cap
//!   catches a broken caller.
//!
//! Readiness is signalled by one byte on a socketpair that asyncio watches
//! (`loop.add_reader`); a flag makes that one byte per wake-up, not per event.

use super::error::MeshErr;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Semaphore;

/// Facts about one connected peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerFacts {
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub outbound: bool,
    pub relayed: bool,
    pub since: f64,
}

#[derive(Debug)]
pub enum Event {
    Direct {
        peer: String,
        channel: String,
        payload: Vec<u8>,
        at: f64,
    },
    Topic {
        topic: String,
        source: Option<String>,
        via: String,
        data: Vec<u8>,
        at: f64,
    },
    Connected(PeerFacts),
    Disconnected {
        peer: String,
        cause: Option<String>,
    },
    Dropped {
        reason: &'static str,
        peer: Option<String>,
        count: u64,
    },
}

impl Event {
    fn holds_permit(&self) -> bool {
        matches!(self, Event::Direct { .. } | Event::Topic { .. })
    }
}

/// What a command's reply carries.
#[derive(Debug)]
pub enum Reply {
    Unit,
    Peer(PeerFacts),
    Time(f64),
    Bytes(Vec<u8>),
}

#[derive(Debug)]
pub enum Control {
    Reply {
        id: u64,
        result: Result<Reply, MeshErr>,
    },
    Request {
        id: u64,
        peer: String,
        protocol: String,
        payload: Vec<u8>,
    },
}

/// Connection events may overshoot the data capacity by this much; beyond it
/// even they are dropped (and counted). 1,000s of connections churning at once
/// fit; a runaway does not grow memory without bound.
const CONNECTION_EVENT_HEADROOM: usize = 16_384;
/// Distinct (reason, peer) drop counters kept before folding into (reason, None).
const MAX_DROP_KEYS: usize = 1024;
/// Hard cap of the control queue (see the module comment).
pub const MAX_CONTROL: usize = 1 << 20;

#[derive(Default)]
struct Queues {
    events: VecDeque<Event>,
    control: VecDeque<Control>,
    /// Drops not yet reported as `Dropped` events, coalesced.
    unreported: HashMap<(&'static str, Option<String>), u64>,
}

/// Counters for `MeshNode.stats`.
#[derive(Default)]
pub struct Counters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub topic_in: AtomicU64,
    pub topic_out: AtomicU64,
    pub requests_in: AtomicU64,
    pub requests_out: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub streams_reset: AtomicU64,
    pub incoming_refused: AtomicU64,
    pub chat_streams_opened: AtomicU64,
    pub chat_streams_accepted: AtomicU64,
    pub publish_no_peers: AtomicU64,
    drops: Mutex<HashMap<&'static str, u64>>,
}

impl Counters {
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = vec![
            ("messages_in".into(), get(&self.messages_in)),
            ("messages_out".into(), get(&self.messages_out)),
            ("bytes_in".into(), get(&self.bytes_in)),
            ("bytes_out".into(), get(&self.bytes_out)),
            ("topic_in".into(), get(&self.topic_in)),
            ("topic_out".into(), get(&self.topic_out)),
            ("requests_in".into(), get(&self.requests_in)),
            ("requests_out".into(), get(&self.requests_out)),
            ("connections_opened".into(), get(&self.connections_opened)),
            ("connections_closed".into(), get(&self.connections_closed)),
            ("streams_reset".into(), get(&self.streams_reset)),
            ("incoming_refused".into(), get(&self.incoming_refused)),
            ("chat_streams_opened".into(), get(&self.chat_streams_opened)),
            (
                "chat_streams_accepted".into(),
                get(&self.chat_streams_accepted),
            ),
            ("publish_no_peers".into(), get(&self.publish_no_peers)),
        ];
        let mut dropped_total = 0;
        for (reason, n) in lock(&self.drops).iter() {
            dropped_total += n;
            out.push((format!("dropped_{reason}"), *n));
        }
        out.push(("dropped".into(), dropped_total));
        out
    }
}

pub fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A poisoned lock only means another thread panicked while holding it; the
/// queues are still consistent (every critical section is a push or a pop).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Hub {
    queues: Mutex<Queues>,
    capacity: usize,
    /// Permits for data events; see the module comment.
    pub permits: Arc<Semaphore>,
    notified: AtomicBool,
    notify_tx: UnixStream,
    pub counters: Counters,
}

impl Hub {
    /// `notify_tx` is the Rust end of the socketpair (non-blocking).
    pub fn new(capacity: usize, notify_tx: UnixStream) -> Self {
        Hub {
            queues: Mutex::new(Queues::default()),
            capacity,
            permits: Arc::new(Semaphore::new(capacity)),
            notified: AtomicBool::new(false),
            notify_tx,
            counters: Counters::default(),
        }
    }

    fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            // WouldBlock means bytes are already waiting to be read: the reader
            // will wake anyway. Any other error means Python closed its end.
            let _ = (&self.notify_tx).write(&[1]);
        }
    }

    /// Python read the wake-up byte(s): the next push must write a new one.
    pub fn ack(&self) {
        self.notified.store(false, Ordering::Release);
    }

    /// Push a data event whose permit the caller already took (and forgot).
    pub fn push_with_permit(&self, ev: Event) {
        lock(&self.queues).events.push_back(ev);
        self.wake();
    }

    /// Push a data event from the swarm: dropped and counted when full.
    pub fn try_push_data(&self, ev: Event, peer: Option<&str>) {
        match self.permits.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.push_with_permit(ev);
            }
            Err(_) => self.drop_counted("queue_full", peer, 1),
        }
    }

    /// Push a connection event (no permit; capped with headroom).
    pub fn push_connection(&self, ev: Event) {
        let mut q = lock(&self.queues);
        if q.events.len() >= self.capacity + CONNECTION_EVENT_HEADROOM {
            drop(q);
            self.drop_counted("queue_full", None, 1);
            return;
        }
        q.events.push_back(ev);
        drop(q);
        self.wake();
    }

    /// Count a drop by policy; it is reported as a `Dropped` event at the next drain.
    pub fn drop_counted(&self, reason: &'static str, peer: Option<&str>, count: u64) {
        *lock(&self.counters.drops).entry(reason).or_insert(0) += count;
        let mut q = lock(&self.queues);
        let key_peer = if q.unreported.len() >= MAX_DROP_KEYS {
            None
        } else {
            peer.map(str::to_owned)
        };
        *q.unreported.entry((reason, key_peer)).or_insert(0) += count;
        drop(q);
        self.wake();
    }

    pub fn push_control(&self, c: Control) {
        let mut q = lock(&self.queues);
        if q.control.len() >= MAX_CONTROL {
            // Only a caller that never reads its replies gets here.
            drop(q);
            self.drop_counted("control_queue_full", None, 1);
            return;
        }
        q.control.push_back(c);
        drop(q);
        self.wake();
    }

    /// Up to `max` events, oldest first, then the drops not yet reported.
    /// Frees the permits of the data events taken (readers resume).
    pub fn drain_events(&self, max: usize) -> Vec<Event> {
        let mut q = lock(&self.queues);
        let n = max.min(q.events.len());
        let mut out: Vec<Event> = q.events.drain(..n).collect();
        if out.len() < max && !q.unreported.is_empty() {
            for ((reason, peer), count) in q.unreported.drain() {
                out.push(Event::Dropped {
                    reason,
                    peer,
                    count,
                });
            }
        }
        drop(q);
        let freed = out.iter().filter(|e| e.holds_permit()).count();
        self.permits.add_permits(freed);
        out
    }

    pub fn drain_control(&self) -> Vec<Control> {
        lock(&self.queues).control.drain(..).collect()
    }

    /// Events waiting (for tests and the stats).
    pub fn pending_events(&self) -> usize {
        lock(&self.queues).events.len()
    }

    /// On stop: wake the readers waiting for permits so they end.
    pub fn close(&self) {
        self.permits.close();
        self.wake();
    }
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
