//! Direct messages on `/unaiverse/chat/1.0.0`: one long-lived stream per peer,
//! used in both directions.
//!
//! Each connected peer has one writer task owning a bounded frame queue. It
//! writes on the first stream it has, whichever side opened it: an inbound
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
use tokio::sync::{mpsc, Notify};

/// Frames queued per peer before `send` has to wait for the writer.
pub const FRAMES_PER_PEER: usize = 1024;
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

/// What the swarm loop keeps per peer to reach its writer.
#[derive(Clone)]
pub struct ChatPeer {
    pub frames: mpsc::Sender<Vec<u8>>,
    pub adopt: mpsc::Sender<Sink>,
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
    let (frames_tx, frames_rx) = mpsc::channel(FRAMES_PER_PEER);
    // At most a couple of streams per peer race to be the one we write on.
    let (adopt_tx, adopt_rx) = mpsc::channel(4);
    tokio::spawn(run_writer(
        peer,
        frames_rx,
        adopt_rx,
        control,
        hub,
        max_payload,
    ));
    ChatPeer {
        frames: frames_tx,
        adopt: adopt_tx,
    }
}

async fn run_writer(
    peer: PeerId,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut adopt: mpsc::Receiver<Sink>,
    mut control: libp2p_stream::Control,
    hub: Arc<Hub>,
    max_payload: usize,
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
                let mut batch = first;
                let mut count = 1u64;
                while batch.len() < COALESCE_BYTES {
                    match frames.try_recv() {
                        Ok(more) => {
                            batch.extend_from_slice(&more);
                            count += 1;
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
                match written.await {
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
    // Peer gone: frames still queued can never be written.
    let mut left = 0;
    while frames.try_recv().is_ok() {
        left += 1;
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
