//! The swarm: which libp2p protocols the node runs and how they are configured.

use super::config::{NodeConfig, PubSub};
use super::error::MeshErr;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    connection_limits, gossipsub, identify, identity::Keypair, noise, ping, relay, tcp, yamux,
    StreamProtocol, Swarm, SwarmBuilder,
};
use std::time::Duration;

/// The direct-message protocol of the Go agent nodes.
pub const CHAT_PROTOCOL: StreamProtocol = StreamProtocol::new("/unaiverse/chat/1.0.0");
/// identify's protocol version string, the one go-libp2p and rust-libp2p send.
const IDENTIFY_PROTOCOL: &str = "/ipfs/id/1.0.0";
const AGENT_VERSION: &str = concat!("peerpool/", env!("CARGO_PKG_VERSION"));

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub relay_client: relay::client::Behaviour,
    pub relay_server: Toggle<relay::Behaviour>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    /// gossipsub, or floodsub (see `make_pubsub`); off with pubsub='none'.
    pub gossipsub: Toggle<gossipsub::Behaviour>,
    /// Outbound streams of the chat and request protocols (see chat.rs, rpc.rs).
    pub streams: libp2p_stream::Behaviour,
    /// Inbound streams of the chat and request protocols (see inbound.rs).
    pub inbound: super::inbound::Behaviour,
}

pub fn build_swarm(cfg: &NodeConfig, key: Keypair) -> Result<Swarm<Behaviour>, MeshErr> {
    let idle = cfg.idle_timeout;
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| MeshErr::other(format!("tcp transport: {e}")))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| MeshErr::other(format!("relay client transport: {e}")))?
        .with_behaviour(|key, relay_client| make_behaviour(cfg, key, relay_client))
        .map_err(|e| MeshErr::other(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

fn make_behaviour(
    cfg: &NodeConfig,
    key: &Keypair,
    relay_client: relay::client::Behaviour,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let local = key.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(cfg.max_connections)
        .with_max_established_per_peer(cfg.max_connections_per_peer);
    let gossipsub = make_pubsub(cfg, key)?;
    let relay_server = cfg
        .relay_server
        .then(|| relay::Behaviour::new(local, relay::Config::default()));
    Ok(Behaviour {
        limits: connection_limits::Behaviour::new(limits),
        relay_client,
        relay_server: relay_server.into(),
        identify: identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                .with_agent_version(AGENT_VERSION.into())
                // No address book: nothing here redials from it (go-libp2p does
                // not redial either); the swarm loop keeps the listen addresses
                // peers report, for relay dials (driver.rs).
                .with_cache_size(0),
        ),
        ping: ping::Behaviour::new(ping::Config::new()),
        gossipsub: gossipsub.into(),
        streams: libp2p_stream::Behaviour::new(),
        inbound: super::inbound::Behaviour::new(inbound_protocols(cfg)?),
    })
}

/// Pub/sub: rust-libp2p's gossipsub, signing ours and verifying theirs
/// (go-libp2p's default policy, StrictSign, for gossipsub and floodsub alike).
///
/// floodsub is gossipsub with `/floodsub/1.0.0` added to its protocols, not
/// rust-libp2p's floodsub crate: that one neither signs nor verifies (Go and
/// py-libp2p floodsub nodes reject its messages) and refuses RPCs over 2,048
/// bytes. A peer that speaks only floodsub (go-libp2p's or py-libp2p's
/// FloodSub router) negotiates `/floodsub/1.0.0` and gets every message on
/// the topics it subscribed to, forwarded or ours, as floodsub does; two of
/// our nodes negotiate meshsub between themselves. Either way a message may
/// be as large as `max_message_size`.
fn make_pubsub(
    cfg: &NodeConfig,
    key: &Keypair,
) -> Result<Option<gossipsub::Behaviour>, Box<dyn std::error::Error + Send + Sync>> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(gossipsub::ValidationMode::Strict)
        // an RPC carries the message plus protobuf overhead
        .max_transmit_size(cfg.max_message_size.saturating_add(64 * 1024))
        .heartbeat_interval(Duration::from_secs(1));
    match cfg.pubsub {
        PubSub::Gossipsub => {}
        PubSub::Floodsub => {
            builder.support_floodsub();
        }
        PubSub::None => return Ok(None),
    }
    let config = builder
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    let behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)?;
    Ok(Some(behaviour))
}

/// The protocols we accept streams on: chat, then the request protocols.
fn inbound_protocols(cfg: &NodeConfig) -> Result<Vec<StreamProtocol>, String> {
    let mut out = vec![CHAT_PROTOCOL];
    for p in &cfg.request_protocols {
        let proto = StreamProtocol::try_from_owned(p.clone())
            .map_err(|e| format!("request protocol {p:?}: {e}"))?;
        if out.contains(&proto) {
            return Err(format!("protocol {p:?} given twice"));
        }
        out.push(proto);
    }
    Ok(out)
}
