use super::*;
use std::io::Read;

fn hub(capacity: usize) -> (Hub, UnixStream) {
    let (tx, rx) = UnixStream::pair().unwrap();
    tx.set_nonblocking(true).unwrap();
    rx.set_nonblocking(true).unwrap();
    (Hub::new(capacity, tx), rx)
}

fn topic(n: u8) -> Event {
    Event::Topic {
        topic: "t".into(),
        source: None,
        via: "p".into(),
        data: vec![n],
        at: 0.0,
    }
}

fn wake_bytes(rx: &mut UnixStream) -> usize {
    let mut buf = [0u8; 64];
    rx.read(&mut buf).unwrap_or(0)
}

#[test]
fn one_wake_byte_per_wake_up_not_per_event() {
    let (hub, mut rx) = hub(8);
    hub.try_push_data(topic(1), None);
    hub.try_push_data(topic(2), None);
    assert_eq!(wake_bytes(&mut rx), 1);
    hub.ack();
    assert_eq!(hub.drain_events(10).len(), 2);
    hub.try_push_data(topic(3), None);
    assert_eq!(wake_bytes(&mut rx), 1);
}

#[test]
fn data_from_the_swarm_beyond_capacity_is_dropped_and_reported_once() {
    let (hub, _rx) = hub(2);
    for n in 0..5 {
        hub.try_push_data(topic(n), Some("peerA"));
    }
    let events = hub.drain_events(100);
    assert_eq!(events.len(), 3);
    assert!(matches!(
        events[2],
        Event::Dropped {
            reason: "queue_full",
            count: 3,
            ..
        }
    ));
    let snap = hub.counters.snapshot();
    assert!(snap.contains(&("dropped_queue_full".to_string(), 3)));
    assert!(snap.contains(&("dropped".to_string(), 3)));
    // draining gave the permits back
    hub.try_push_data(topic(9), None);
    assert_eq!(hub.drain_events(100).len(), 1);
}

#[test]
fn connection_events_pass_a_full_data_queue() {
    let (hub, _rx) = hub(1);
    hub.try_push_data(topic(0), None);
    hub.push_connection(Event::Disconnected {
        peer: "p".into(),
        cause: None,
    });
    let events = hub.drain_events(100);
    assert_eq!(events.len(), 2);
    assert!(matches!(events[1], Event::Disconnected { .. }));
}

#[test]
fn drain_respects_max_and_keeps_order() {
    let (hub, _rx) = hub(10);
    for n in 0..5 {
        hub.try_push_data(topic(n), None);
    }
    let first: Vec<u8> = hub
        .drain_events(2)
        .into_iter()
        .map(|e| match e {
            Event::Topic { data, .. } => data[0],
            _ => 255,
        })
        .collect();
    assert_eq!(first, [0, 1]);
    assert_eq!(hub.pending_events(), 3);
    assert_eq!(hub.permits.available_permits(), 7);
}

#[test]
fn closed_hub_refuses_waiting_readers() {
    let (hub, _rx) = hub(1);
    hub.close();
    assert!(hub.permits.try_acquire().is_err());
}
