//! What the swarm loop knows of the peers it is connected to: each live
//! connection (its address, direction, whether it is relayed, since when),
//! and the listen addresses a connected peer reported through identify.
//! From these come the `PeerFacts` Python sees and the transport address put
//! in front of a circuit address that names its relay by id only.
//!
//! Apart from the driver (`driver.rs`), which owns the swarm and answers
//! commands: this is plain bookkeeping with no swarm in it, so that the rules
//! it keeps (the earliest connection speaks for a peer, a peer's entries go
//! with its last connection) can be read and tested on their own.

use super::events::{now, PeerFacts};
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;

/// One live connection to a peer.
pub struct Conn {
    pub id: ConnectionId,
    pub addr: Multiaddr,
    pub outbound: bool,
    pub relayed: bool,
    pub since: f64,
}

impl Conn {
    /// The connection the swarm just established, opened now.
    pub fn established(id: ConnectionId, endpoint: ConnectedPoint) -> Conn {
        let (addr, outbound, relayed) = match endpoint {
            ConnectedPoint::Dialer { address, .. } => {
                let relayed = is_circuit(&address);
                (address, true, relayed)
            }
            // A relayed inbound connection shows the circuit on our side only:
            // its send-back address is the bare /p2p/<remote>.
            ConnectedPoint::Listener {
                send_back_addr,
                local_addr,
            } => {
                let relayed = is_circuit(&local_addr) || is_circuit(&send_back_addr);
                (send_back_addr, false, relayed)
            }
        };
        Conn {
            id,
            addr,
            outbound,
            relayed,
            since: now(),
        }
    }
}

/// The live connections by peer, and what connected peers reported.
#[derive(Default)]
pub struct Connections {
    by_peer: HashMap<PeerId, Vec<Conn>>,
    /// Listen addresses connected peers reported through identify (no
    /// circuits): where a relay is reached when an address names only its id.
    identified: HashMap<PeerId, Vec<Multiaddr>>,
}

impl Connections {
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.by_peer.contains_key(peer)
    }

    /// Add a connection; true when it is the peer's first.
    pub fn opened(&mut self, peer: PeerId, conn: Conn) -> bool {
        let first = !self.by_peer.contains_key(&peer);
        self.by_peer.entry(peer).or_default().push(conn);
        first
    }

    /// Drop connection `id`; `remaining` is how many the swarm still has to
    /// the peer. With the last one the peer's entries go, identify's too.
    pub fn closed(&mut self, peer: &PeerId, id: ConnectionId, remaining: u32) {
        if let Some(conns) = self.by_peer.get_mut(peer) {
            conns.retain(|c| c.id != id);
            if conns.is_empty() || remaining == 0 {
                self.by_peer.remove(peer);
            }
        }
        if remaining == 0 {
            self.identified.remove(peer);
        }
    }

    /// What a connected peer reported through identify: its listen
    /// addresses, circuits left out (they serve to reach a relay directly).
    pub fn note_identify(&mut self, peer: PeerId, listen_addrs: Vec<Multiaddr>) {
        let addrs = listen_addrs
            .into_iter()
            .filter(|a| !is_circuit(a))
            .collect();
        self.identified.insert(peer, addrs);
    }

    /// The peer's facts: every address, and the direction, relaying and time
    /// of its earliest connection. None when not connected.
    pub fn facts(&self, peer: &PeerId) -> Option<PeerFacts> {
        let conns = self.by_peer.get(peer)?;
        let first = conns.iter().min_by(|a, b| a.since.total_cmp(&b.since))?;
        Some(PeerFacts {
            peer_id: peer.to_base58(),
            addrs: conns.iter().map(|c| c.addr.to_string()).collect(),
            outbound: first.outbound,
            relayed: first.relayed,
            since: first.since,
        })
    }

    /// `/p2p/<relay>/p2p-circuit...` names the relay by id only, and
    /// rust-libp2p's relay client needs its transport address in front
    /// ("Missing relay address"). Fill it in from what the swarm knows: the
    /// address of our own (direct) connection to the relay, else a listen
    /// address it reported through identify. Anything else passes unchanged.
    pub fn with_relay_address(&self, addr: Multiaddr) -> Result<Multiaddr, String> {
        let Some(Protocol::P2p(relay)) = addr.iter().next() else {
            return Ok(addr);
        };
        if !is_circuit(&addr) {
            return Ok(addr);
        }
        let direct = self.by_peer.get(&relay).and_then(|cs| {
            cs.iter()
                .find(|c| c.outbound && !c.relayed)
                .map(|c| c.addr.clone())
        });
        // a relay listening on 0.0.0.0 reports 127.0.0.1 too: useless from elsewhere
        let reported = || {
            let addrs = self.identified.get(&relay)?;
            addrs
                .iter()
                .find(|a| !is_loopback(a))
                .or(addrs.first())
                .cloned()
        };
        let Some(base) = direct.or_else(reported) else {
            return Err(format!(
                "{addr}: no known address of relay {relay}: connect to it first or give its address"
            ));
        };
        let mut full: Multiaddr = base
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        for p in addr.iter() {
            full.push(p);
        }
        Ok(full)
    }
}

pub fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

#[cfg(test)]
#[path = "connections_tests.rs"]
mod tests;
