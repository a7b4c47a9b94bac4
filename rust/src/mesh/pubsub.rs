//! Pub/sub for the swarm loop: subscribe, publish, and topic messages turned
//! into events. gossipsub and floodsub are alternatives (a node runs one), so
//! each function tries the one the node was started with.

use super::behaviour::Behaviour;
use super::error::MeshErr;
use super::events::{inc, now, Counters, Event, Hub};
use libp2p::{floodsub, gossipsub};

/// rust-libp2p's floodsub refuses RPCs over 2,048 bytes (its MAX_MESSAGE_LEN_BYTES);
/// the RPC adds the source, a sequence number and the topic to the data.
pub const FLOODSUB_MAX_RPC: usize = 2048;
const FLOODSUB_OVERHEAD: usize = 96;

pub fn subscribe(b: &mut Behaviour, topic: &str, on: bool) -> Result<(), MeshErr> {
    if let Some(gs) = b.gossipsub.as_mut() {
        let t = gossipsub::IdentTopic::new(topic);
        if on {
            gs.subscribe(&t)
                .map_err(|e| MeshErr::other(format!("subscribe {topic}: {e:?}")))?;
        } else {
            gs.unsubscribe(&t);
        }
        return Ok(());
    }
    if let Some(fs) = b.floodsub.as_mut() {
        let t = floodsub::Topic::new(topic.to_owned());
        if on {
            fs.subscribe(t);
        } else {
            fs.unsubscribe(t);
        }
        return Ok(());
    }
    Err(MeshErr::other("this node was started with pubsub='none'"))
}

pub fn publish(
    b: &mut Behaviour,
    counters: &Counters,
    topic: String,
    data: Vec<u8>,
) -> Result<(), MeshErr> {
    if let Some(gs) = b.gossipsub.as_mut() {
        return match gs.publish(gossipsub::IdentTopic::new(topic.clone()), data) {
            Ok(_) => {
                inc(&counters.topic_out, 1);
                Ok(())
            }
            // go-libp2p publishes into the void without complaint; so do we,
            // but the stats say it reached nobody.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                inc(&counters.publish_no_peers, 1);
                Ok(())
            }
            Err(e) => Err(MeshErr::other(format!("publish on {topic}: {e}"))),
        };
    }
    if let Some(fs) = b.floodsub.as_mut() {
        if data.len() + topic.len() + FLOODSUB_OVERHEAD > FLOODSUB_MAX_RPC {
            return Err(MeshErr::other(format!(
                "floodsub message of {} bytes on {topic}: rust-libp2p's floodsub carries at most {} bytes per message",
                data.len(),
                FLOODSUB_MAX_RPC - FLOODSUB_OVERHEAD - topic.len().min(FLOODSUB_MAX_RPC - FLOODSUB_OVERHEAD)
            )));
        }
        fs.publish(floodsub::Topic::new(topic), data);
        inc(&counters.topic_out, 1);
        return Ok(());
    }
    Err(MeshErr::other("this node was started with pubsub='none'"))
}

pub fn on_gossipsub(hub: &Hub, ev: gossipsub::Event) {
    match ev {
        gossipsub::Event::Message {
            propagation_source,
            message,
            ..
        } => {
            inc(&hub.counters.topic_in, 1);
            let via = propagation_source.to_base58();
            hub.try_push_data(
                Event::Topic {
                    topic: message.topic.into_string(),
                    source: message.source.map(|p| p.to_base58()),
                    via: via.clone(),
                    data: message.data,
                    at: now(),
                },
                Some(&via),
            );
        }
        gossipsub::Event::SlowPeer {
            peer_id,
            failed_messages,
        } => {
            let n = (failed_messages.priority + failed_messages.non_priority) as u64;
            if n > 0 {
                hub.drop_counted("gossipsub_slow_peer", Some(&peer_id.to_base58()), n);
            }
        }
        _ => {}
    }
}

pub fn on_floodsub(hub: &Hub, ev: floodsub::Event) {
    if let floodsub::Event::Message(m) = ev {
        inc(&hub.counters.topic_in, 1);
        let source = m.source.to_base58();
        // floodsub does not say which neighbour forwarded it
        for topic in m.topics {
            hub.try_push_data(
                Event::Topic {
                    topic: topic.id().to_owned(),
                    source: Some(source.clone()),
                    via: source.clone(),
                    data: m.data.to_vec(),
                    at: now(),
                },
                Some(&source),
            );
        }
    }
}
