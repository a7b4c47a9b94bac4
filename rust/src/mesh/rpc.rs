//! Raw-bytes request/response on the configured protocols (the Chord DHT).
//!
//! One long-lived stream per (peer, protocol), opened by the requester at its
//! first request and shared by all the requests that follow, each matched to
//! its response by an id. A stream per request (the first design) cost a
//! stream set-up and a multistream-select negotiation every time: 0.34 ms a
//! request against 0.16 ms for a chat round trip on 127.0.0.1, and five
//! requests sent together took 1.1 ms, answered almost one after the other.
//! On one stream, requests sent together leave in one write and their
//! answers come back together.
//!
//! Frames: `tag (u8) | id (u64) | length (u32) | body`. Tag 0 is a request
//! (only the side that opened the stream sends them), 1 a response with the
//! handler's bytes, 2 an error response with a UTF-8 message (so a handler's
//! exception reaches the requester as an error, not as an empty answer). A
//! length over the node's request limit is refused before anything is
//! allocated, and ends the stream; so does an unknown tag.

use super::error::MeshErr;
use super::events::{inc, Control, Reply};
use super::shared::Shared;
use futures::io::{ReadHalf, WriteHalf};
use futures::prelude::*;
use libp2p::{PeerId, Stream, StreamProtocol};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub type Response = Result<Vec<u8>, String>;

const REQUEST: u8 = 0;
const OK: u8 = 1;
const ERR: u8 = 2;
const HEADER_BYTES: usize = 13;
/// Inbound requests waiting for a Python handler at once; more are answered
/// with a "busy" error (counted) rather than queued without bound.
pub const MAX_INBOUND_PENDING: usize = 1024;
/// Once a frame's header has arrived, its body must follow within this.
const READ_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long our handler may take before the request is answered with an error.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames queued for one stream's writer before the senders wait.
const LINK_QUEUE: usize = 1024;
/// Requests awaiting their answer on one stream; past it the entries of
/// callers that gave up (timed out) are purged.
const LINK_PENDING: usize = 8192;
/// Frames coalesced into one write, up to this many bytes.
const COALESCE_BYTES: usize = 256 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub id: u64,
    pub body: Vec<u8>,
}

pub fn encode_frame(tag: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.push(tag);
    out.extend_from_slice(&id.to_be_bytes());
    // Bodies are checked against the request limit (a u32) before they get here.
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The next frame, or None at a clean end of stream (between frames).
pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Option<Frame>> {
    let mut head = [0u8; HEADER_BYTES];
    let mut got = 0;
    while got < HEADER_BYTES {
        let n = io.read(&mut head[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let tag = head[0];
    if tag > ERR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown frame tag {tag}"),
        ));
    }
    let id = u64::from_be_bytes(head[1..9].try_into().unwrap_or_default());
    let len = u32::from_be_bytes(head[9..13].try_into().unwrap_or_default()) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over the limit of {max} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    match tokio::time::timeout(READ_BODY_TIMEOUT, io.read_exact(&mut body)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    }
    Ok(Some(Frame { tag, id, body }))
}

/// Write the frames queued on `rx`, several to a write, until every sender is gone.
async fn write_frames(mut write: WriteHalf<Stream>, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(mut buf) = rx.recv().await {
        while buf.len() < COALESCE_BYTES {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.close().await;
}

// --- the requester's side ---------------------------------------------------------

struct Outgoing {
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>, MeshErr>>,
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Vec<u8>, MeshErr>>>>>;
/// A link's generation (which task owns it) and the queue to that task.
type LinkEntry = (u64, mpsc::Sender<Outgoing>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The open outbound streams, by peer and protocol: each a queue to its task.
#[derive(Default)]
pub struct Links {
    map: Mutex<HashMap<(PeerId, StreamProtocol), LinkEntry>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Links {
    /// The peer's stream for `protocol`, or a new one whose task opens it.
    fn get_or_open(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        control: libp2p_stream::Control,
        shared: &Arc<Shared>,
    ) -> mpsc::Sender<Outgoing> {
        let mut map = lock(&self.map);
        let key = (peer, protocol.clone());
        if let Some((_, tx)) = map.get(&key) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        map.insert(key, (generation, tx.clone()));
        tokio::spawn(run_link(
            peer,
            protocol.clone(),
            generation,
            control,
            rx,
            shared.clone(),
        ));
        tx
    }

    /// Forget a link whose task ended (unless a newer one replaced it already).
    fn remove(&self, peer: PeerId, protocol: StreamProtocol, generation: u64) {
        let mut map = lock(&self.map);
        let key = (peer, protocol);
        if map.get(&key).is_some_and(|(g, _)| *g == generation) {
            map.remove(&key);
        }
    }
}

/// One outbound request; the reply goes to the control queue under `id`.
pub async fn call(
    id: u64,
    peer: PeerId,
    protocol: StreamProtocol,
    payload: Vec<u8>,
    timeout: Duration,
    control: libp2p_stream::Control,
    shared: Arc<Shared>,
) {
    inc(&shared.hub.counters.requests_out, 1);
    let exchange = async {
        let (tx, rx) = oneshot::channel();
        let mut outgoing = Outgoing { payload, reply: tx };
        // Once more on a fresh stream if the one found had just ended.
        for attempt in 0..2 {
            let link = shared
                .links
                .get_or_open(peer, &protocol, control.clone(), &shared);
            match link.send(outgoing).await {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) if attempt == 0 => outgoing = back,
                Err(_) => return Err(MeshErr::request(format!("{protocol} to {peer}: closed"))),
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(MeshErr::request(format!(
                "{protocol} to {peer}: the stream closed"
            )))
        })
    };
    let result = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r.map(Reply::Bytes),
        Err(_) => Err(MeshErr::request(format!(
            "{protocol} to {peer}: timed out after {timeout:?}"
        ))),
    };
    shared.hub.push_control(Control::Reply { id, result });
}

/// The task of one outbound stream: open it, then write requests and match answers.
async fn run_link(
    peer: PeerId,
    protocol: StreamProtocol,
    generation: u64,
    mut control: libp2p_stream::Control,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let opened = control.open_stream(peer, protocol.clone()).await;
    let stream = match opened {
        Ok(s) => s,
        Err(e) => {
            shared.links.remove(peer, protocol.clone(), generation);
            rx.close();
            while let Some(o) = rx.recv().await {
                let _ = o
                    .reply
                    .send(Err(MeshErr::request(format!("{protocol} to {peer}: {e}"))));
            }
            return;
        }
    };
    let (read, write) = stream.split();
    let waiting: Waiting = Arc::default();
    let (frames_tx, frames_rx) = mpsc::channel(LINK_QUEUE);
    let writer = write_frames(write, frames_rx);
    let requests = forward_requests(&mut rx, frames_tx, waiting.clone());
    let answers = read_answers(read, waiting.clone(), &protocol, peer, shared.max_request);
    tokio::select! {
        _ = writer => {},
        _ = requests => {},
        _ = answers => {},
    }
    shared.links.remove(peer, protocol.clone(), generation);
    rx.close();
    let reason = MeshErr::request(format!("{protocol} to {peer}: the stream closed"));
    for (_, tx) in lock(&waiting).drain() {
        let _ = tx.send(Err(reason.clone()));
    }
}

/// Requests from callers onto the stream, each registered under a fresh id first.
async fn forward_requests(
    rx: &mut mpsc::Receiver<Outgoing>,
    frames: mpsc::Sender<Vec<u8>>,
    waiting: Waiting,
) {
    let mut next = 0u64;
    while let Some(o) = rx.recv().await {
        next += 1;
        {
            let mut w = lock(&waiting);
            if w.len() >= LINK_PENDING {
                w.retain(|_, tx| !tx.is_closed());
            }
            w.insert(next, o.reply);
        }
        if frames
            .send(encode_frame(REQUEST, next, &o.payload))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn read_answers(
    mut read: ReadHalf<Stream>,
    waiting: Waiting,
    protocol: &StreamProtocol,
    peer: PeerId,
    max: usize,
) {
    loop {
        let frame = match read_frame(&mut read, max).await {
            Ok(Some(f)) if f.tag != REQUEST => f,
            _ => return, // the end, a bad frame, or a request on our own stream
        };
        let Some(tx) = lock(&waiting).remove(&frame.id) else {
            continue; // its caller gave up
        };
        let _ = tx.send(if frame.tag == OK {
            Ok(frame.body)
        } else {
            let message = String::from_utf8_lossy(&frame.body);
            Err(MeshErr::request(format!(
                "{protocol} on {peer} failed: {message}"
            )))
        });
    }
}

// --- the answering side ---------------------------------------------------------

/// An inbound request stream: its requests go to Python one by one, the
/// answers back in whatever order the handlers finish.
pub fn accept(peer: PeerId, stream: Stream, protocol: String, shared: Arc<Shared>) {
    tokio::spawn(serve(peer, stream, protocol, shared));
}

async fn serve(peer: PeerId, stream: Stream, protocol: String, shared: Arc<Shared>) {
    let peer_s = peer.to_base58();
    let (mut read, write) = stream.split();
    let (frames_tx, frames_rx) = mpsc::channel(LINK_QUEUE);
    let writer = tokio::spawn(write_frames(write, frames_rx));
    loop {
        let frame = match read_frame(&mut read, shared.max_request).await {
            Ok(Some(f)) if f.tag == REQUEST => f,
            Ok(None) => break, // the requester closed: answers in flight still go out
            _ => {
                shared.hub.drop_counted("bad_request", Some(&peer_s), 1);
                writer.abort(); // both halves dropped: the stream is reset
                return;
            }
        };
        inc(&shared.hub.counters.requests_in, 1);
        if shared.lock_inbound().len() >= MAX_INBOUND_PENDING {
            shared.hub.drop_counted("requests_busy", Some(&peer_s), 1);
            let busy = encode_frame(ERR, frame.id, b"busy: too many requests waiting");
            if frames_tx.send(busy).await.is_err() {
                break;
            }
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        shared.lock_inbound().insert(id, tx);
        shared.hub.push_control(Control::Request {
            id,
            peer: peer_s.clone(),
            protocol: protocol.clone(),
            payload: frame.body,
        });
        tokio::spawn(answer(id, frame.id, rx, frames_tx.clone(), shared.clone()));
    }
}

async fn answer(
    id: u64,
    wire_id: u64,
    rx: oneshot::Receiver<Response>,
    frames: mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let response = match tokio::time::timeout(HANDLER_TIMEOUT, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the node stopped".to_string()),
        Err(_) => Err("the request handler timed out".to_string()),
    };
    shared.lock_inbound().remove(&id);
    let frame = match response {
        Ok(body) if body.len() > shared.max_request => encode_frame(
            ERR,
            wire_id,
            format!(
                "response of {} bytes is over the limit of {}",
                body.len(),
                shared.max_request
            )
            .as_bytes(),
        ),
        Ok(body) => encode_frame(OK, wire_id, &body),
        Err(message) => encode_frame(ERR, wire_id, message.as_bytes()),
    };
    // The requester may have gone; nothing to do about a failed write.
    let _ = frames.send(frame).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        // read_frame times the body out with tokio's timer.
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut wire = encode_frame(REQUEST, 7, b"abc");
        wire.extend(encode_frame(ERR, 8, b"boom"));
        let mut r = &wire[..];
        assert_eq!(
            block_on(read_frame(&mut r, 16)).unwrap(),
            Some(Frame {
                tag: REQUEST,
                id: 7,
                body: b"abc".to_vec()
            })
        );
        assert_eq!(block_on(read_frame(&mut r, 16)).unwrap().unwrap().tag, ERR);
        assert_eq!(block_on(read_frame(&mut r, 16)).unwrap(), None);
    }

    #[test]
    fn bad_frames_are_errors() {
        // over the limit: refused from the header, before the body is read
        let wire = encode_frame(OK, 1, b"abcde");
        assert!(block_on(read_frame(&mut &wire[..HEADER_BYTES], 4)).is_err());
        // an unknown tag
        let mut wire = encode_frame(OK, 1, b"");
        wire[0] = 9;
        assert!(block_on(read_frame(&mut &wire[..], 4)).is_err());
        // cut inside the header or the body
        let wire = encode_frame(OK, 1, b"abcd");
        assert!(block_on(read_frame(&mut &wire[..5], 4)).is_err());
        assert!(block_on(read_frame(&mut &wire[..15], 4)).is_err());
    }
}
