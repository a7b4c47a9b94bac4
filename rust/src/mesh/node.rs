//! The handle Python holds: it starts the node's runtime thread, sends it
//! commands, and reads what it produced. Plain Rust (no pyo3); the binding in
//! `rust/src/py/mesh.rs` only converts arguments and results. What the thread
//! does is `runtime.rs`; the state both sides share is `shared.rs`.

use super::chat::{PushError, CHUNK_BYTES};
use super::config::NodeConfig;
use super::driver::Command;
use super::error::MeshErr;
use super::events::{Control, Event, Hub, PeerFacts};
use super::runtime::{runtime_thread, START_TIMEOUT};
use super::shared::{lock, Shared};
use super::{frame, identity, rpc};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// Commands queued before `command` has to wait for the swarm loop.
const COMMAND_QUEUE: usize = 4096;

/// Outcome of `send`: written to the peer's queue, or waiting for room (the
/// reply comes later under the id given).
#[derive(Debug, PartialEq, Eq)]
pub enum SendStatus {
    Queued,
    Waiting,
}

pub struct MeshHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    runtime: tokio::runtime::Handle,
    control: libp2p_stream::Control,
    thread: Mutex<Option<JoinHandle<()>>>,
    notify_rx: UnixStream,
    peer_id: String,
    request_protocols: Vec<String>,
}

pub fn parse_addr(s: &str) -> Result<Multiaddr, MeshErr> {
    s.parse::<Multiaddr>()
        .map_err(|e| MeshErr::address(format!("bad multiaddr {s:?}: {e}")))
}

pub fn parse_peer(s: &str) -> Result<PeerId, MeshErr> {
    s.parse::<PeerId>()
        .map_err(|e| MeshErr::address(format!("bad peer id {s:?}: {e}")))
}

impl MeshHandle {
    /// Start the node: its runtime thread, the swarm, and every listener.
    /// Returns once each listen address is bound (or fails).
    pub fn start(cfg: NodeConfig) -> Result<MeshHandle, MeshErr> {
        let key = identity::decode(&cfg.key)?;
        let peer_id = key.public().to_peer_id().to_base58();
        let listen = cfg
            .listen
            .iter()
            .map(|a| parse_addr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let external = cfg
            .external
            .iter()
            .map(|a| parse_addr(a))
            .collect::<Result<Vec<_>, _>>()?;
        for p in &cfg.request_protocols {
            StreamProtocol::try_from_owned(p.clone())
                .map_err(|e| MeshErr::address(format!("request protocol {p:?}: {e}")))?;
        }
        if cfg.event_queue_size == 0 {
            return Err(MeshErr::other("event_queue_size must be at least 1"));
        }
        let (notify_tx, notify_rx) =
            UnixStream::pair().map_err(|e| MeshErr::other(format!("socketpair: {e}")))?;
        for s in [&notify_tx, &notify_rx] {
            s.set_nonblocking(true)
                .map_err(|e| MeshErr::other(format!("socketpair: {e}")))?;
        }
        let shared = Arc::new(Shared::new(
            Arc::new(Hub::new(cfg.event_queue_size, notify_tx)),
            cfg.max_message_size,
            cfg.max_request_size,
        ));
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread_shared = shared.clone();
        // This is the one place where peerpool's Rust code owns a thread: the
        // node's tokio runtime, started here and joined by `stop`.
        let thread = std::thread::Builder::new()
            .name("peerpool-mesh".into())
            .spawn(move || {
                runtime_thread(cfg, key, listen, external, thread_shared, cmd_rx, ready_tx)
            })
            .map_err(|e| MeshErr::other(format!("cannot start the mesh thread: {e}")))?;
        let started = ready_rx
            .recv_timeout(START_TIMEOUT + Duration::from_secs(5))
            .map_err(|_| MeshErr::other("the mesh thread did not start"))?;
        let (runtime, control, request_protocols) = match started {
            Ok(x) => x,
            Err(e) => {
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(MeshHandle {
            shared,
            commands: cmd_tx,
            runtime,
            control,
            thread: Mutex::new(Some(thread)),
            notify_rx,
            peer_id,
            request_protocols,
        })
    }

    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The file descriptor asyncio watches; readable means "drain".
    pub fn notify_fd(&self) -> RawFd {
        self.notify_rx.as_raw_fd()
    }

    /// Python read the wake-up bytes (it reads them itself from the fd).
    pub fn ack(&self) {
        self.shared.hub.ack();
    }

    pub fn listen_addrs(&self) -> Vec<String> {
        self.shared.lock_listen().clone()
    }

    pub fn peers(&self) -> Vec<PeerFacts> {
        let mut v: Vec<PeerFacts> = self.shared.lock_peers().values().cloned().collect();
        v.sort_by(|a, b| a.since.total_cmp(&b.since));
        v
    }

    pub fn peer(&self, peer: &str) -> Option<PeerFacts> {
        self.shared.lock_peers().get(peer).cloned()
    }

    pub fn stats(&self) -> Vec<(String, u64)> {
        let mut s = self.shared.hub.counters.snapshot();
        s.push((
            "events_pending".into(),
            self.shared.hub.pending_events() as u64,
        ));
        s.push(("peers".into(), self.shared.lock_peers().len() as u64));
        s
    }

    pub fn drain_events(&self, max: usize) -> Vec<Event> {
        self.shared.hub.drain_events(max)
    }

    pub fn drain_control(&self) -> Vec<Control> {
        self.shared.hub.drain_control()
    }

    /// Queue a command; waits (the caller has released the GIL) only when the
    /// swarm loop is 4,096 commands behind, which it never blocks on Python to be.
    fn command(&self, c: Command) -> Result<(), MeshErr> {
        match self.commands.try_send(c) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(c)) => self
                .commands
                .blocking_send(c)
                .map_err(|_| MeshErr::closed()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(MeshErr::closed()),
        }
    }

    pub fn dial(&self, id: u64, addrs: &[String], timeout: Duration) -> Result<(), MeshErr> {
        let addrs = addrs
            .iter()
            .map(|a| parse_addr(a))
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(MeshErr::address("dial needs at least one address"));
        }
        self.command(Command::Dial { id, addrs, timeout })
    }

    pub fn disconnect(&self, id: u64, peer: &str) -> Result<(), MeshErr> {
        let peer = parse_peer(peer)?;
        self.command(Command::Disconnect { id, peer })
    }

    pub fn subscribe(&self, id: u64, topic: &str, on: bool) -> Result<(), MeshErr> {
        let topic = topic.to_owned();
        self.command(if on {
            Command::Subscribe { id, topic }
        } else {
            Command::Unsubscribe { id, topic }
        })
    }

    pub fn publish(&self, id: u64, topic: &str, data: Vec<u8>) -> Result<(), MeshErr> {
        if data.len() > self.shared.max_payload {
            return Err(frame::FrameError::PayloadTooLarge {
                len: data.len(),
                max: self.shared.max_payload,
            }
            .into());
        }
        self.command(Command::Publish {
            id,
            topic: topic.to_owned(),
            data,
        })
    }

    pub fn reserve(&self, id: u64, relay: &str, timeout: Duration) -> Result<(), MeshErr> {
        let addr = parse_addr(relay)?;
        let Some(Protocol::P2p(relay_peer)) = addr.iter().last() else {
            return Err(MeshErr::address(format!(
                "relay address {relay:?} must end with /p2p/<relay id>"
            )));
        };
        self.command(Command::Reserve {
            id,
            relay: addr,
            relay_peer,
            timeout,
        })
    }

    /// A direct message: straight into the peer's writer queue when it has
    /// room (no round trip through the swarm loop), else a task waits for room
    /// and replies under `id`.
    pub fn send(
        &self,
        id: u64,
        peer: &str,
        channel: &str,
        payload: &[u8],
    ) -> Result<SendStatus, MeshErr> {
        let bytes = frame::encode(channel, payload, self.shared.max_payload)?;
        self.enqueue(id, peer, vec![(bytes, 1)])
    }

    /// Many direct messages on one channel, in order: framed back to back in
    /// chunks of about `CHUNK_BYTES` and queued like `send`, all in one call.
    /// A payload over the limit fails the whole batch before any is queued.
    pub fn send_many<'a>(
        &self,
        id: u64,
        peer: &str,
        channel: &str,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<SendStatus, MeshErr> {
        let mut chunks = Vec::new();
        let mut cur = Vec::new();
        let mut frames = 0u64;
        for p in payloads {
            frame::encode_into(&mut cur, channel, p, self.shared.max_payload)?;
            frames += 1;
            if cur.len() >= CHUNK_BYTES {
                chunks.push((std::mem::take(&mut cur), frames));
                frames = 0;
            }
        }
        if frames > 0 {
            chunks.push((cur, frames));
        }
        self.enqueue(id, peer, chunks)
    }

    /// Bytes onto the peer's chat stream as they are: the test hook that plays
    /// a misbehaving peer.
    pub fn send_raw(&self, id: u64, peer: &str, bytes: Vec<u8>) -> Result<SendStatus, MeshErr> {
        self.enqueue(id, peer, vec![(bytes, 1)])
    }

    /// Queue chunks (bytes, frames in them) in order: those that fit now go
    /// straight in; from the first that does not, one task waits for room for
    /// it and the rest, and replies under `id`.
    fn enqueue(
        &self,
        id: u64,
        peer: &str,
        chunks: Vec<(Vec<u8>, u64)>,
    ) -> Result<SendStatus, MeshErr> {
        let writer = self
            .shared
            .lock_chat()
            .get(peer)
            .cloned()
            .ok_or_else(|| MeshErr::not_connected(peer))?;
        let mut rest = chunks.into_iter();
        while let Some((bytes, frames)) = rest.next() {
            match writer.try_push(bytes, frames) {
                Ok(()) => {}
                Err(PushError::Closed) => return Err(MeshErr::not_connected(peer)),
                Err(PushError::Full(bytes, frames)) => {
                    let shared = self.shared.clone();
                    let peer = peer.to_owned();
                    let waiting: Vec<_> = std::iter::once((bytes, frames)).chain(rest).collect();
                    self.runtime.spawn(async move {
                        let mut result = Ok(super::events::Reply::Unit);
                        for (bytes, frames) in waiting {
                            if writer.push(bytes, frames).await.is_err() {
                                result = Err(MeshErr::not_connected(peer));
                                break;
                            }
                        }
                        shared.hub.push_control(Control::Reply { id, result });
                    });
                    return Ok(SendStatus::Waiting);
                }
            }
        }
        Ok(SendStatus::Queued)
    }

    pub fn request(
        &self,
        id: u64,
        peer: &str,
        protocol: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), MeshErr> {
        if !self.request_protocols.iter().any(|p| p == protocol) {
            return Err(MeshErr::request(format!(
                "protocol {protocol:?} is not among this node's request_protocols"
            )));
        }
        if payload.len() > self.shared.max_request {
            return Err(MeshErr::request(format!(
                "request of {} bytes is over the limit of {}",
                payload.len(),
                self.shared.max_request
            )));
        }
        let peer_id = parse_peer(peer)?;
        if self.peer(peer).is_none() {
            return Err(MeshErr::request(format!("not connected to {peer}")));
        }
        let proto = StreamProtocol::try_from_owned(protocol.to_owned())
            .map_err(|e| MeshErr::request(format!("protocol {protocol:?}: {e}")))?;
        if self.commands.is_closed() {
            return Err(MeshErr::closed());
        }
        let task = rpc::call(
            id,
            peer_id,
            proto,
            payload,
            timeout,
            self.control.clone(),
            self.shared.clone(),
        );
        self.runtime.spawn(task);
        Ok(())
    }

    /// The answer of a Python handler to inbound request `id`.
    pub fn respond(&self, id: u64, response: rpc::Response) {
        if let Some(tx) = self.shared.lock_inbound().remove(&id) {
            // the requester's task may have timed out meanwhile: nothing to send to
            let _ = tx.send(response);
        }
    }

    /// Stop the swarm and join the runtime thread. Idempotent.
    pub fn stop(&self) {
        let thread = lock(&self.thread).take();
        let Some(thread) = thread else { return };
        // A full queue is drained by the loop; a closed one means it already ended.
        let _ = self.commands.blocking_send(Command::Stop);
        let _ = thread.join();
        self.shared.hub.close();
    }
}

impl Drop for MeshHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
