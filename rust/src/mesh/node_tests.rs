//! Two real nodes on 127.0.0.1 in one test process, driven as Python drives them.

use super::*;
use crate::mesh::events::Reply;
use crate::mesh::Kind;
use std::time::Instant;

fn node() -> MeshHandle {
    let mut cfg = NodeConfig::new(identity::generate());
    cfg.request_protocols = vec!["/t/1.0.0".into()];
    MeshHandle::start(cfg).unwrap()
}

fn reply(h: &MeshHandle, id: u64) -> Result<Reply, MeshErr> {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        for c in h.drain_control() {
            if let Control::Reply { id: got, result } = c {
                if got == id {
                    return result;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no reply to command {id}");
}

fn direct(h: &MeshHandle) -> (String, String, Vec<u8>) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        for e in h.drain_events(100) {
            if let Event::Direct {
                peer,
                channel,
                payload,
                ..
            } = e
            {
                return (peer, channel, payload);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no direct message");
}

#[test]
fn dial_and_direct_messages_both_ways() {
    let a = node();
    let b = node();
    let addr = b.listen_addrs()[0].clone();
    assert!(addr.ends_with(&format!("/p2p/{}", b.peer_id())));
    a.dial(1, &[addr], Duration::from_secs(10)).unwrap();
    let Reply::Peer(facts) = reply(&a, 1).unwrap() else {
        panic!("not a peer")
    };
    assert_eq!(facts.peer_id, b.peer_id());
    assert!(facts.outbound);
    a.send(2, b.peer_id(), "chan", b"ping").unwrap();
    assert_eq!(
        direct(&b),
        (
            a.peer_id().to_string(),
            "chan".to_string(),
            b"ping".to_vec()
        )
    );
    // b's writer may only now learn of the connection: retry until it does
    let end = Instant::now() + Duration::from_secs(10);
    while b.send(3, a.peer_id(), "back", b"pong").is_err() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(direct(&a).2, b"pong");
    a.request(
        4,
        b.peer_id(),
        "/t/1.0.0",
        b"q".to_vec(),
        Duration::from_secs(5),
    )
    .unwrap();
    let req_id = loop {
        if let Some(Control::Request { id, payload, .. }) = b.drain_control().into_iter().next() {
            assert_eq!(payload, b"q");
            break id;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    b.respond(req_id, Ok(b"answer".to_vec()));
    assert!(matches!(reply(&a, 4), Ok(Reply::Bytes(r)) if r == b"answer"));
    a.stop();
    a.stop();
    assert_eq!(
        a.dial(5, &["/ip4/127.0.0.1/tcp/1".into()], Duration::from_secs(1))
            .unwrap_err()
            .kind,
        Kind::Closed
    );
}

#[test]
fn wrong_peer_id_and_bad_addresses() {
    let a = node();
    let b = node();
    let other = PeerId::random();
    let addr = b.listen_addrs()[0]
        .rsplit_once("/p2p/")
        .unwrap()
        .0
        .to_string();
    a.dial(1, &[format!("{addr}/p2p/{other}")], Duration::from_secs(10))
        .unwrap();
    assert_eq!(reply(&a, 1).unwrap_err().kind, Kind::Dial);
    assert_eq!(
        a.dial(2, &["nonsense".into()], Duration::from_secs(1))
            .unwrap_err()
            .kind,
        Kind::Address
    );
    assert_eq!(
        a.send(3, &other.to_base58(), "c", b"x").unwrap_err().kind,
        Kind::NotConnected
    );
}
