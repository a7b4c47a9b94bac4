//! The node's configuration, as `MeshNode(...)` takes it.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSub {
    Gossipsub,
    Floodsub,
    None,
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Protobuf-encoded Ed25519 keypair (see `identity`).
    pub key: Vec<u8>,
    pub listen: Vec<String>,
    /// Addresses announced as ours (a relay server hands them to its clients).
    /// Empty with `relay_server`: our listen addresses are announced.
    pub external: Vec<String>,
    pub pubsub: PubSub,
    pub relay_server: bool,
    pub max_connections: Option<u32>,
    pub max_connections_per_peer: Option<u32>,
    pub request_protocols: Vec<String>,
    pub max_message_size: usize,
    pub max_request_size: usize,
    pub event_queue_size: usize,
    pub idle_timeout: Duration,
}

impl NodeConfig {
    pub fn new(key: Vec<u8>) -> Self {
        NodeConfig {
            key,
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            external: Vec::new(),
            pubsub: PubSub::Gossipsub,
            relay_server: false,
            max_connections: None,
            max_connections_per_peer: Some(2),
            request_protocols: Vec::new(),
            max_message_size: super::frame::DEFAULT_MAX_PAYLOAD,
            max_request_size: 4 * 1024 * 1024,
            event_queue_size: 65_536,
            idle_timeout: Duration::from_secs(60),
        }
    }
}
