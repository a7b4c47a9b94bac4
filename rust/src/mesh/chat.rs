//! Direct messages on `/unaiverse/chat/1.0.0`: one long-lived stream per peer,
//! used in both directions.
//!
//! Each connected peer has one writer task owning a frame queue bounded in
//! bytes (a semaphore of `QUEUE_BYTES` permits; a chunk holds its permits
//! until it is written). A chunk is one frame (`send`) or many frames encoded
//! back to back (`send_many`), so a batch crosses from Python in one call and
//! reaches the stream in one write. The writer writes on the first stream it has, whichever side opened it: an inbound
//! stream hands its write half to the writer (the Go nodes answer on the
//! stream the other side opened), and a stream the writer opens itself gets a
//! reader too, since replies may come back on it. Every stream has a reader
//! task; a reader waits for an event-queue permit before each frame, which is
//! what turns a slow Python consumer into yamux backpressure on the sender.
//! A bad frame is a counted drop and resets the stream (both halves dropped).

use super::behaviour::CHAT_PROTOCOL;
use super::events::{inc, now, Event, Hub};
use super::frame::FrameDecoder;
use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Bytes of frames queued per peer before `send` has to wait for the writer
/// (enough to keep a write of `COALESCE_BYTES` in flight while more queue up).
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// `send_many` cuts its frames into chunks of about this size, so the queue's
/// byte bound stays fine-grained and the writer coalesces as it likes.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Frames coalesced into one write, up to this many bytes (fewer yamux frames
/// and syscalls per message; the Go reader does not care how writes are cut).
const COALESCE_BYTES: usize = 256 * 1024;
/// Reads from a stream are at most this big.
const READ_CHUNK: usize = 64 * 1024;

/// Set when a reader gave up on its stream; the writer then drops its half so
/// the stream is reset, not left half-open.
#[derive(Default)]
pub struct StreamState {
    dead: AtomicBool,
    wake: Notify,
}

impl StreamState {
    fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.wake.notify_one();
    }
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }
}

/// The write half of a chat stream with its state.
pub struct Sink {
    half: WriteHalf<Stream>,
    state: Arc<StreamState>,
}

/// Frames encoded back to back, with the queue permits they hold.
pub struct Chunk {
    bytes: Vec<u8>,
    frames: u64,
    permit: OwnedSemaphorePermit,
}

/// Why a chunk was not queued.
pub enum PushError {
    /// No room now: the bytes are handed back to wait with `push`.
    Full(Vec<u8>, u64),
    /// The writer has ended (the peer is gone).
    Closed,
}

/// What the swarm loop keeps per peer to reach its writer.
#[derive(Clone)]
pub struct ChatPeer {
    frames: mpsc::UnboundedSender<Chunk>,
    budget: Arc<Semaphore>,
    pub adopt: mpsc::Sender<Sink>,
}

/// Permits a chunk takes: its size, capped so one frame larger than the whole
/// queue still goes through (alone).
fn permits_for(len: usize) -> u32 {
    len.clamp(1, QUEUE_BYTES) as u32 // QUEUE_BYTES fits in u32
}

impl ChatPeer {
    /// Queue `frames` frames encoded in `bytes` if the queue has room now.
    pub fn try_push(&self, bytes: Vec<u8>, frames: u64) -> Result<(), PushError> {
        match self
            .budget
            .clone()
            .try_acquire_many_owned(permits_for(bytes.len()))
        {
            Ok(permit) => self.queue(bytes, frames, permit),
            Err(TryAcquireError::NoPermits) => Err(PushError::Full(bytes, frames)),
            Err(TryAcquireError::Closed) => Err(PushError::Closed),
        }
    }

    /// Queue them, waiting for room (tokio's semaphore serves waiters in order).
    pub async fn push(&self, bytes: Vec<u8>, frames: u64) -> Result<(), PushError> {
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(permits_for(bytes.len()))
            .await
            .map_err(|_| PushError::Closed)?;
        self.queue(bytes, frames, permit)
    }

    fn queue(
        &self,
        bytes: Vec<u8>,
        frames: u64,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), PushError> {
        let chunk = Chunk {
            bytes,
            frames,
            permit,
        };
        self.frames.send(chunk).map_err(|_| PushError::Closed)
    }
}

/// Split a stream: its reader starts now, the write half is returned.
pub fn start_stream(peer: PeerId, stream: Stream, hub: Arc<Hub>, max_payload: usize) -> Sink {
    let (read, write) = stream.split();
    let state = Arc::new(StreamState::default());
    tokio::spawn(run_reader(peer, read, hub, max_payload, state.clone()));
    Sink { half: write, state }
}

/// Spawn the writer of a newly connected peer.
pub fn spawn_writer(
    peer: PeerId,
    control: libp2p_stream::Control,
    hub: Arc<Hub>,
    max_payload: usize,
) -> ChatPeer {
    // unbounded as a channel, bounded in bytes by `budget` (see ChatPeer::push)
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    let budget = Arc::new(Semaphore::new(QUEUE_BYTES));
    // At most a couple of streams per peer race to be the one we write on.
    let (adopt_tx, adopt_rx) = mpsc::channel(4);
    tokio::spawn(run_writer(
        peer,
        frames_rx,
        adopt_rx,
        control,
        hub,
        max_payload,
        budget.clone(),
    ));
    ChatPeer {
        frames: frames_tx,
        budget,
        adopt: adopt_tx,
    }
}

async fn run_writer(
    peer: PeerId,
    mut frames: mpsc::UnboundedReceiver<Chunk>,
    mut adopt: mpsc::Receiver<Sink>,
    mut control: libp2p_stream::Control,
    hub: Arc<Hub>,
    max_payload: usize,
    budget: Arc<Semaphore>,
) {
    let peer_s = peer.to_base58();
    let mut sink: Option<Sink> = None;
    let mut adopt_open = true;
    loop {
        let dead_wake = async {
            match &sink {
                Some(s) => s.state.wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            offered = adopt.recv(), if adopt_open => match offered {
                Some(s) if sink.as_ref().is_none_or(|cur| cur.state.is_dead()) => sink = Some(s),
                Some(_extra) => {} // we already write elsewhere; its reader keeps reading
                None => adopt_open = false,
            },
            _ = dead_wake => {
                if sink.as_ref().is_some_and(|s| s.state.is_dead()) {
                    sink = None;
                }
            }
            first = frames.recv() => {
                let Some(first) = first else { break };
                let mut count = first.frames;
                let mut batch = first.bytes;
                // the permits go back once the write is done: the queue's bound
                // covers what is being written too
                let mut held = vec![first.permit];
                while batch.len() < COALESCE_BYTES {
                    match frames.try_recv() {
                        Ok(more) => {
                            batch.extend_from_slice(&more.bytes);
                            count += more.frames;
                            held.push(more.permit);
                        }
                        Err(_) => break,
                    }
                }
                if sink.as_ref().is_some_and(|s| s.state.is_dead()) {
                    sink = None;
                }
                if sink.is_none() {
                    match control.open_stream(peer, CHAT_PROTOCOL).await {
                        Ok(stream) => {
                            inc(&hub.counters.chat_streams_opened, 1);
                            sink = Some(start_stream(peer, stream, hub.clone(), max_payload));
                        }
                        Err(_) => {
                            hub.drop_counted("send_failed", Some(&peer_s), count);
                            continue;
                        }
                    }
                }
                let Some(s) = sink.as_mut() else { continue };
                let written = async {
                    s.half.write_all(&batch).await?;
                    s.half.flush().await
                };
                let result = written.await;
                drop(held);
                match result {
                    Ok(()) => {
                        inc(&hub.counters.messages_out, count);
                        inc(&hub.counters.bytes_out, batch.len() as u64);
                    }
                    Err(_) => {
                        // The stream broke under us: the batch is lost, say so.
                        hub.drop_counted("send_failed", Some(&peer_s), count);
                        inc(&hub.counters.streams_reset, 1);
                        sink = None;
                    }
                }
            }
        }
    }
    // Peer gone: frames still queued can never be written; a sender still
    // waiting for room is told so (its acquire fails).
    budget.close();
    let mut left = 0;
    while let Ok(chunk) = frames.try_recv() {
        left += chunk.frames;
    }
    if left > 0 {
        hub.drop_counted("send_failed", Some(&peer_s), left);
    }
}

async fn run_reader(
    peer: PeerId,
    mut read: ReadHalf<Stream>,
    hub: Arc<Hub>,
    max_payload: usize,
    state: Arc<StreamState>,
) {
    let peer_s = peer.to_base58();
    let mut decoder = FrameDecoder::new(max_payload);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) => {
                if let Err(e) = decoder.finish() {
                    hub.drop_counted(e.reason(), Some(&peer_s), 1);
                }
                return;
            }
            Ok(n) => n,
            Err(_) => {
                // reset or connection lost; a frame cut short is still a loss
                if !decoder.at_boundary() {
                    hub.drop_counted("truncated_frame", Some(&peer_s), 1);
                }
                state.kill(); // the writer must not keep writing into a reset stream
                return;
            }
        };
        inc(&hub.counters.bytes_in, n as u64);
        let mut pos = 0;
        while pos < n {
            match decoder.decode(&buf[pos..n]) {
                Ok((used, frame)) => {
                    pos += used;
                    let Some(frame) = frame else { continue };
                    // Wait here, not reading, while Python is behind.
                    let Ok(permit) = hub.permits.acquire().await else {
                        return; // node stopping
                    };
                    permit.forget();
                    inc(&hub.counters.messages_in, 1);
                    hub.push_with_permit(Event::Direct {
                        peer: peer_s.clone(),
                        channel: frame.channel,
                        payload: frame.payload,
                        at: now(),
                    });
                }
                Err(e) => {
                    // counted before the drop is reported, so Python sees both
                    inc(&hub.counters.streams_reset, 1);
                    hub.drop_counted(e.reason(), Some(&peer_s), 1);
                    state.kill();
                    return; // our half dropped; the writer drops the other
                }
            }
        }
    }
}
