//! The handle Python holds: it starts the node's runtime thread, sends it
//! commands, and reads what it produced. Plain Rust (no pyo3); the binding in
//! `rust/src/py/mesh.rs` only converts arguments and results.

use super::behaviour::build_swarm;
use super::chat::{ChatPeer, PushError, CHUNK_BYTES};
use super::config::NodeConfig;
use super::driver::{Command, Driver};
use super::error::MeshErr;
use super::events::{Control, Event, Hub, PeerFacts};
use super::{frame, identity, rpc};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Commands queued before `command` has to wait for the swarm loop.
const COMMAND_QUEUE: usize = 4096;
/// How long start-up may take to bind every listen address.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// State shared by the handle (Python's thread) and the runtime thread.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub max_payload: usize,
    pub max_request: usize,
    pub next_id: AtomicU64,
    chat: Mutex<HashMap<String, ChatPeer>>,
    peers: Mutex<HashMap<String, PeerFacts>>,
    listen: Mutex<Vec<String>>,
    inbound: Mutex<HashMap<u64, oneshot::Sender<rpc::Response>>>,
    /// Outbound request streams, one per peer and protocol.
    pub links: rpc::Links,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic elsewhere cannot leave these maps half-updated (single inserts/removes)
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn lock_chat(&self) -> MutexGuard<'_, HashMap<String, ChatPeer>> {
        lock(&self.chat)
    }
    pub fn lock_peers(&self) -> MutexGuard<'_, HashMap<String, PeerFacts>> {
        lock(&self.peers)
    }
    pub fn lock_listen(&self) -> MutexGuard<'_, Vec<String>> {
        lock(&self.listen)
    }
    pub fn lock_inbound(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<rpc::Response>>> {
        lock(&self.inbound)
    }
}

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
        let shared = Arc::new(Shared {
            hub: Arc::new(Hub::new(cfg.event_queue_size, notify_tx)),
            max_payload: cfg.max_message_size,
            max_request: cfg.max_request_size,
            next_id: AtomicU64::new(1 << 62), // apart from Python's command ids
            chat: Mutex::default(),
            peers: Mutex::default(),
            listen: Mutex::default(),
            inbound: Mutex::default(),
            links: rpc::Links::default(),
        });
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

type Started = Result<(tokio::runtime::Handle, libp2p_stream::Control, Vec<String>), MeshErr>;

fn runtime_thread(
    cfg: NodeConfig,
    key: libp2p::identity::Keypair,
    listen: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    ready: std::sync::mpsc::SyncSender<Started>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(MeshErr::other(format!("tokio runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(async move {
        let driver = match set_up(&cfg, key, &listen, external, shared).await {
            Ok(d) => d,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let handle = tokio::runtime::Handle::current();
        if ready
            .send(Ok((
                handle,
                driver.control.clone(),
                cfg.request_protocols.clone(),
            )))
            .is_err()
        {
            return; // the caller gave up waiting
        }
        driver.run(commands).await;
    });
    // Dropping the runtime here cancels the stream tasks: their streams reset.
    drop(runtime);
}

async fn set_up(
    cfg: &NodeConfig,
    key: libp2p::identity::Keypair,
    listen: &[Multiaddr],
    external: Vec<Multiaddr>,
    shared: Arc<Shared>,
) -> Result<Driver, MeshErr> {
    use futures::StreamExt;
    let mut swarm = build_swarm(cfg, key)?;
    let control = swarm.behaviour().streams.new_control();
    let announce = external.is_empty() && cfg.relay_server;
    for a in external {
        swarm.add_external_address(a);
    }
    let mut pending = Vec::new();
    for a in listen {
        let id = swarm
            .listen_on(a.clone())
            .map_err(|e| MeshErr::address(format!("cannot listen on {a}: {e}")))?;
        pending.push(id);
    }
    let mut driver = Driver::new(swarm, shared, control);
    driver.announce_listen_addrs = announce;
    let deadline = Instant::now() + START_TIMEOUT;
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, driver.swarm.select_next_some())
            .await
            .map_err(|_| MeshErr::other("timed out binding the listen addresses"))?;
        match &ev {
            SwarmEvent::NewListenAddr { listener_id, .. } => pending.retain(|l| l != listener_id),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason: Err(e),
                ..
            } if pending.contains(listener_id) => {
                return Err(MeshErr::address(format!("cannot listen: {e}")));
            }
            SwarmEvent::ListenerError { listener_id, error } if pending.contains(listener_id) => {
                return Err(MeshErr::address(format!("cannot listen: {error}")));
            }
            _ => {}
        }
        driver.on_swarm_event(ev);
    }
    Ok(driver)
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
