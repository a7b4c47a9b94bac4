//! Pub/sub for the swarm loop: subscribe, publish, and topic messages turned
//! into events. gossipsub serves both pubsub modes (floodsub is gossipsub that
//! also speaks `/floodsub/1.0.0`, see behaviour.rs).

use super::behaviour::Behaviour;
use super::error::MeshErr;
use super::events::{inc, now, Counters, Event, Hub};
use libp2p::gossipsub;

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
