//! The swarm loop: it runs on the node's runtime thread, takes commands from
//! Python, turns swarm events into connection facts and events, and answers
//! commands through the control queue.

use super::behaviour::{Behaviour, BehaviourEvent, CHAT_PROTOCOL};
use super::chat::{self, ChatPeer};
use super::connections::{is_circuit, Conn, Connections};
use super::error::MeshErr;
use super::events::{inc, now, Control, Event, Reply};
use super::inbound::InboundStream;
use super::pubsub;
use super::rpc;
use super::shared::Shared;
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, relay, Multiaddr, PeerId, Swarm};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What Python asks of the swarm. Each carries the id its reply is sent under.
#[derive(Debug)]
pub enum Command {
    Dial {
        id: u64,
        addrs: Vec<Multiaddr>,
        timeout: Duration,
    },
    Disconnect {
        id: u64,
        peer: PeerId,
    },
    Subscribe {
        id: u64,
        topic: String,
    },
    Unsubscribe {
        id: u64,
        topic: String,
    },
    Publish {
        id: u64,
        topic: String,
        data: Vec<u8>,
    },
    Reserve {
        id: u64,
        relay: Multiaddr,
        relay_peer: PeerId,
        timeout: Duration,
    },
    Stop,
}

/// How often pending dials and reservations are checked against their deadline.
const DEADLINE_TICK: Duration = Duration::from_millis(100);
/// The expiry `reserve` reports. rust-libp2p 0.57's relay client (libp2p-relay
/// 0.22) reads the relay's `Reservation.expire` only to arm its renewal timer
/// (at 3/4 of the time left) and does not pass it on: its
/// `ReservationReqAccepted` event carries the relay's id, `renewal` and the
/// circuit `limit` (duration and bytes of each relayed connection, not the
/// reservation's). So this is the relay v2 default of rust-libp2p and
/// go-libp2p servers, one hour; the client renews the reservation by itself.
const RESERVATION_DURATION: f64 = 3600.0;

struct PendingDial {
    id: u64,
    rest: VecDeque<Multiaddr>,
    deadline: Instant,
    errors: Vec<String>,
}

struct PendingReserve {
    id: u64,
    relay_peer: PeerId,
    deadline: Instant,
}

pub struct Driver {
    pub swarm: Swarm<Behaviour>,
    pub shared: Arc<Shared>,
    pub control: libp2p_stream::Control,
    pub announce_listen_addrs: bool,
    dials: HashMap<ConnectionId, PendingDial>,
    reserves: HashMap<ListenerId, PendingReserve>,
    conns: Connections,
    writers: HashMap<PeerId, ChatPeer>,
    stopping: bool,
}

impl Driver {
    pub fn new(
        swarm: Swarm<Behaviour>,
        shared: Arc<Shared>,
        control: libp2p_stream::Control,
    ) -> Self {
        Driver {
            swarm,
            shared,
            control,
            announce_listen_addrs: false,
            dials: HashMap::new(),
            reserves: HashMap::new(),
            conns: Connections::default(),
            writers: HashMap::new(),
            stopping: false,
        }
    }

    fn reply(&self, id: u64, result: Result<Reply, MeshErr>) {
        self.shared.hub.push_control(Control::Reply { id, result });
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        use futures::StreamExt;
        let mut tick = tokio::time::interval(DEADLINE_TICK);
        while !self.stopping {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break, // the handle is gone
                },
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = tick.tick() => self.expire(),
            }
        }
        for (_, d) in self.dials.drain() {
            self.shared.hub.push_control(Control::Reply {
                id: d.id,
                result: Err(MeshErr::closed()),
            });
        }
        for (_, r) in self.reserves.drain() {
            self.shared.hub.push_control(Control::Reply {
                id: r.id,
                result: Err(MeshErr::closed()),
            });
        }
    }

    /// Used by start-up, before `run`: one swarm event.
    pub fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                if self.announce_listen_addrs && !is_circuit(&address) {
                    self.swarm.add_external_address(address.clone());
                }
                let full = self.with_p2p(&address);
                let mut addrs = self.shared.lock_listen();
                if !addrs.contains(&full) {
                    addrs.push(full);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = self.with_p2p(&address);
                self.shared.lock_listen().retain(|a| *a != full);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(r) = self.reserves.remove(&listener_id) {
                    let why = match reason {
                        Ok(()) => "listener closed".to_string(),
                        Err(e) => e.to_string(),
                    };
                    self.reply(
                        r.id,
                        Err(MeshErr::dial(format!(
                            "reservation on {} failed: {why}",
                            r.relay_peer
                        ))),
                    );
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                if let Some(r) = self.reserves.remove(&listener_id) {
                    self.swarm.remove_listener(listener_id);
                    self.reply(
                        r.id,
                        Err(MeshErr::dial(format!(
                            "reservation on {} failed: {error}",
                            r.relay_peer
                        ))),
                    );
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_established(peer_id, connection_id, endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => self.on_closed(
                peer_id,
                connection_id,
                num_established,
                cause.map(|c| c.to_string()),
            ),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(mut d) = self.dials.remove(&connection_id) {
                    d.errors.push(error.to_string());
                    self.next_dial_attempt(d);
                }
            }
            SwarmEvent::IncomingConnectionError { .. } => {
                inc(&self.shared.hub.counters.incoming_refused, 1);
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(ev),
            _ => {}
        }
    }

    fn with_p2p(&self, addr: &Multiaddr) -> String {
        let me = *self.swarm.local_peer_id();
        let mut a = addr.clone();
        if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
            a.push(Protocol::P2p(me));
        }
        a.to_string()
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial { id, addrs, timeout } => {
                let d = PendingDial {
                    id,
                    rest: addrs.into(),
                    deadline: Instant::now() + timeout,
                    errors: Vec::new(),
                };
                self.next_dial_attempt(d);
            }
            Command::Disconnect { id, peer } => {
                // Err only means "not connected": disconnecting twice is fine.
                let _ = self.swarm.disconnect_peer_id(peer);
                self.reply(id, Ok(Reply::Unit));
            }
            Command::Subscribe { id, topic } => {
                let r = pubsub::subscribe(self.swarm.behaviour_mut(), &topic, true);
                self.reply(id, r.map(|_| Reply::Unit));
            }
            Command::Unsubscribe { id, topic } => {
                let r = pubsub::subscribe(self.swarm.behaviour_mut(), &topic, false);
                self.reply(id, r.map(|_| Reply::Unit));
            }
            Command::Publish { id, topic, data } => {
                let counters = &self.shared.hub.counters;
                let r = pubsub::publish(self.swarm.behaviour_mut(), counters, topic, data);
                self.reply(id, r.map(|_| Reply::Unit));
            }
            Command::Reserve {
                id,
                relay,
                relay_peer,
                timeout,
            } => match self
                .conns
                .with_relay_address(relay.with(Protocol::P2pCircuit))
                .and_then(|circuit| self.swarm.listen_on(circuit).map_err(|e| e.to_string()))
            {
                Ok(listener) => {
                    let deadline = Instant::now() + timeout;
                    self.reserves.insert(
                        listener,
                        PendingReserve {
                            id,
                            relay_peer,
                            deadline,
                        },
                    );
                }
                Err(e) => self.reply(id, Err(MeshErr::dial(format!("reservation: {e}")))),
            },
            Command::Stop => self.stopping = true,
        }
    }

    fn next_dial_attempt(&mut self, mut d: PendingDial) {
        loop {
            let Some(addr) = d.rest.pop_front() else {
                let why = if d.errors.is_empty() {
                    "no address".to_string()
                } else {
                    d.errors.join("; ")
                };
                self.reply(d.id, Err(MeshErr::dial(format!("dial failed: {why}"))));
                return;
            };
            let expected = match addr.iter().last() {
                Some(Protocol::P2p(p)) => Some(p),
                _ => None,
            };
            if let Some(peer) = expected {
                if let Some(facts) = self.conns.facts(&peer) {
                    self.reply(d.id, Ok(Reply::Peer(facts)));
                    return;
                }
            }
            let addr = match self.conns.with_relay_address(addr) {
                Ok(a) => a,
                Err(e) => {
                    d.errors.push(e);
                    continue;
                }
            };
            let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
            let conn = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    self.dials.insert(conn, d);
                    return;
                }
                Err(e) => d.errors.push(format!("{addr}: {e}")),
            }
        }
    }

    fn expire(&mut self) {
        let now_i = Instant::now();
        let late: Vec<ConnectionId> = self
            .dials
            .iter()
            .filter(|(_, d)| d.deadline <= now_i)
            .map(|(c, _)| *c)
            .collect();
        for c in late {
            if let Some(d) = self.dials.remove(&c) {
                // The attempt may still finish; it then is an ordinary connection.
                self.reply(d.id, Err(MeshErr::dial("dial timed out")));
            }
        }
        let late: Vec<ListenerId> = self
            .reserves
            .iter()
            .filter(|(_, r)| r.deadline <= now_i)
            .map(|(l, _)| *l)
            .collect();
        for l in late {
            if let Some(r) = self.reserves.remove(&l) {
                self.swarm.remove_listener(l);
                self.reply(
                    r.id,
                    Err(MeshErr::dial(format!(
                        "reservation on {} timed out",
                        r.relay_peer
                    ))),
                );
            }
        }
    }

    fn publish_facts(&self, peer: &PeerId) {
        let mut peers = self.shared.lock_peers();
        match self.conns.facts(peer) {
            Some(f) => {
                peers.insert(peer.to_base58(), f);
            }
            None => {
                peers.remove(&peer.to_base58());
            }
        }
    }

    fn on_established(&mut self, peer: PeerId, id: ConnectionId, endpoint: ConnectedPoint) {
        inc(&self.shared.hub.counters.connections_opened, 1);
        let first = self.conns.opened(peer, Conn::established(id, endpoint));
        self.publish_facts(&peer);
        if first {
            let writer = chat::spawn_writer(
                peer,
                self.control.clone(),
                self.shared.hub.clone(),
                self.shared.max_payload,
            );
            self.shared
                .lock_chat()
                .insert(peer.to_base58(), writer.clone());
            self.writers.insert(peer, writer);
            if let Some(facts) = self.conns.facts(&peer) {
                self.shared.hub.push_connection(Event::Connected(facts));
            }
        }
        if let Some(d) = self.dials.remove(&id) {
            if let Some(facts) = self.conns.facts(&peer) {
                self.reply(d.id, Ok(Reply::Peer(facts)));
            }
        }
    }

    fn on_closed(&mut self, peer: PeerId, id: ConnectionId, remaining: u32, cause: Option<String>) {
        inc(&self.shared.hub.counters.connections_closed, 1);
        self.conns.closed(&peer, id, remaining);
        self.publish_facts(&peer);
        if remaining == 0 {
            // Dropping the writer's senders ends it once its queue is drained.
            self.writers.remove(&peer);
            self.shared.lock_chat().remove(&peer.to_base58());
            self.shared.hub.push_connection(Event::Disconnected {
                peer: peer.to_base58(),
                cause,
            });
        }
    }

    fn on_behaviour(&mut self, ev: BehaviourEvent) {
        let hub = &self.shared.hub;
        match ev {
            BehaviourEvent::Gossipsub(ev) => pubsub::on_gossipsub(hub, ev),
            BehaviourEvent::Inbound(InboundStream {
                peer,
                protocol,
                stream,
            }) => {
                if protocol == CHAT_PROTOCOL {
                    inc(&hub.counters.chat_streams_accepted, 1);
                    let sink =
                        chat::start_stream(peer, stream, hub.clone(), self.shared.max_payload);
                    if let Some(w) = self.writers.get(&peer) {
                        // Full: the writer has streams enough; this one is read-only then.
                        let _ = w.adopt.try_send(sink);
                    }
                } else {
                    rpc::accept(peer, stream, protocol.to_string(), self.shared.clone());
                }
            }
            // only while connected (a late report after the close is not kept)
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })
                if self.conns.is_connected(&peer_id) =>
            {
                self.conns.note_identify(peer_id, info.listen_addrs);
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            }) => {
                let done: Vec<ListenerId> = self
                    .reserves
                    .iter()
                    .filter(|(_, r)| r.relay_peer == relay_peer_id)
                    .map(|(l, _)| *l)
                    .collect();
                for l in done {
                    if let Some(r) = self.reserves.remove(&l) {
                        self.reply(r.id, Ok(Reply::Time(now() + RESERVATION_DURATION)));
                    }
                }
            }
            _ => {}
        }
    }
}
