//! The connection table without a swarm: which connection speaks for a peer,
//! what goes with the last one, and where a relay named by id is reached.

use super::*;

fn peer() -> PeerId {
    libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id()
}

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

/// `a` with its relay's address filled in, as text.
fn filled(t: &Connections, a: &str) -> String {
    t.with_relay_address(addr(a)).unwrap().to_string()
}

fn conn(id: usize, a: &str, outbound: bool, since: f64) -> Conn {
    Conn {
        id: ConnectionId::new_unchecked(id),
        addr: addr(a),
        outbound,
        relayed: is_circuit(&addr(a)),
        since,
    }
}

#[test]
fn the_earliest_connection_speaks_for_the_peer() {
    let p = peer();
    let mut t = Connections::default();
    assert!(t.opened(p, conn(1, "/ip4/127.0.0.1/tcp/2", false, 20.0)));
    assert!(!t.opened(p, conn(2, "/ip4/127.0.0.1/tcp/1", true, 10.0)));
    let f = t.facts(&p).unwrap();
    assert_eq!(f.peer_id, p.to_base58());
    assert_eq!(f.addrs.len(), 2);
    assert!(f.outbound); // the one opened at 10.0
    assert_eq!(f.since, 10.0);
}

#[test]
fn the_last_connection_takes_the_peers_entries_with_it() {
    let p = peer();
    let mut t = Connections::default();
    t.opened(p, conn(1, "/ip4/127.0.0.1/tcp/1", true, 1.0));
    t.opened(p, conn(2, "/ip4/127.0.0.1/tcp/2", true, 2.0));
    t.note_identify(p, vec![addr("/ip4/10.0.0.1/tcp/9")]);
    t.closed(&p, ConnectionId::new_unchecked(1), 1);
    assert_eq!(t.facts(&p).unwrap().addrs, vec!["/ip4/127.0.0.1/tcp/2"]);
    t.closed(&p, ConnectionId::new_unchecked(2), 0);
    assert!(!t.is_connected(&p) && t.facts(&p).is_none());
    // identify's addresses went too: a circuit through it is no longer reachable
    let circuit = addr(&format!("/p2p/{p}/p2p-circuit/p2p/{}", peer()));
    assert!(t.with_relay_address(circuit).is_err());
}

#[test]
fn a_relay_named_by_id_gets_our_direct_address_to_it() {
    let relay = peer();
    let target = peer();
    let mut t = Connections::default();
    t.opened(relay, conn(1, "/ip4/127.0.0.1/tcp/4001", true, 1.0));
    t.note_identify(relay, vec![addr("/ip4/10.0.0.1/tcp/4001")]);
    assert_eq!(
        filled(&t, &format!("/p2p/{relay}/p2p-circuit/p2p/{target}")),
        format!("/ip4/127.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{target}")
    );
}

#[test]
fn without_a_direct_connection_identify_gives_a_non_loopback_address() {
    let relay = peer();
    let mut t = Connections::default();
    // inbound only: its send-back address is no way to reach the relay
    t.opened(relay, conn(1, "/ip4/127.0.0.1/tcp/5555", false, 1.0));
    t.note_identify(
        relay,
        vec![
            addr("/ip4/127.0.0.1/tcp/4001"),
            addr(&format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit")),
            addr("/ip4/10.0.0.2/tcp/4001"),
        ],
    );
    // the circuit it reported is left out, and so is loopback
    assert_eq!(
        filled(&t, &format!("/p2p/{relay}/p2p-circuit")),
        format!("/ip4/10.0.0.2/tcp/4001/p2p/{relay}/p2p-circuit")
    );
}

#[test]
fn other_addresses_pass_unchanged() {
    let t = Connections::default();
    for a in [
        "/ip4/127.0.0.1/tcp/1".to_string(),
        format!("/p2p/{}", peer()),
        format!("/ip4/127.0.0.1/tcp/1/p2p/{}/p2p-circuit", peer()),
    ] {
        assert_eq!(filled(&t, &a), a);
    }
}
