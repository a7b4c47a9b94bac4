//! The mesh node: a rust-libp2p swarm (TCP+Noise+yamux, QUIC v1, identify,
//! ping, gossipsub or floodsub, relay v2 client and server, the
//! `/unaiverse/chat/1.0.0` direct messages, raw request/response) on a runtime
//! thread of its own, behind one boundary: commands in through a bounded
//! channel, events out through bounded queues whose readiness is one byte on a
//! socketpair. No pyo3 here; `rust/src/py/mesh.rs` binds it.

pub mod behaviour;
pub mod chat;
pub mod config;
pub mod connections;
pub mod driver;
pub mod error;
pub mod events;
pub mod frame;
pub mod identity;
pub mod inbound;
pub mod node;
pub mod pubsub;
pub mod rpc;
pub mod runtime;
pub mod shared;

pub use config::{NodeConfig, PubSub};
pub use error::{Kind, MeshErr};
pub use events::{Control, Event, PeerFacts, Reply};
pub use node::{MeshHandle, SendStatus};
