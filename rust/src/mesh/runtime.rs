//! The node's runtime thread: it builds a current-thread tokio runtime and
//! the swarm, binds every listen address, reports back to `MeshHandle::start`
//! (waiting on the other side of a channel), then runs the swarm loop until
//! `stop`. Dropping the runtime at the end cancels the stream tasks.
//!
//! Apart from the handle (`node.rs`): this is the start-up and life of the
//! thread, which runs on the other side of the command channel; the handle is
//! what Python calls on its own thread.

use super::behaviour::build_swarm;
use super::config::NodeConfig;
use super::driver::{Command, Driver};
use super::error::MeshErr;
use super::shared::Shared;
use libp2p::swarm::SwarmEvent;
use libp2p::Multiaddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long start-up may take to bind every listen address.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What start-up reports: the runtime to spawn tasks on, the stream control
/// to open streams with, and the request protocols served; or why it failed.
pub type Started = Result<(tokio::runtime::Handle, libp2p_stream::Control, Vec<String>), MeshErr>;

/// The body of the runtime thread (see the module).
pub fn runtime_thread(
    cfg: NodeConfig,
    key: libp2p::identity::Keypair,
    listen: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    ready: std::sync::mpsc::SyncSender<Started>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(MeshErr::other(format!("tokio runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(async move {
        let driver = match set_up(&cfg, key, &listen, external, shared).await {
            Ok(d) => d,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let handle = tokio::runtime::Handle::current();
        if ready
            .send(Ok((
                handle,
                driver.control.clone(),
                cfg.request_protocols.clone(),
            )))
            .is_err()
        {
            return; // the caller gave up waiting
        }
        driver.run(commands).await;
    });
    // Dropping the runtime here cancels the stream tasks: their streams reset.
    drop(runtime);
}

/// Build the swarm, start every listener and wait until each is bound (or
/// fails, or START_TIMEOUT passes); the driver has seen every event by then.
async fn set_up(
    cfg: &NodeConfig,
    key: libp2p::identity::Keypair,
    listen: &[Multiaddr],
    external: Vec<Multiaddr>,
    shared: Arc<Shared>,
) -> Result<Driver, MeshErr> {
    use futures::StreamExt;
    let mut swarm = build_swarm(cfg, key)?;
    let control = swarm.behaviour().streams.new_control();
    let announce = external.is_empty() && cfg.relay_server;
    for a in external {
        swarm.add_external_address(a);
    }
    let mut pending = Vec::new();
    for a in listen {
        let id = swarm
            .listen_on(a.clone())
            .map_err(|e| MeshErr::address(format!("cannot listen on {a}: {e}")))?;
        pending.push(id);
    }
    let mut driver = Driver::new(swarm, shared, control);
    driver.announce_listen_addrs = announce;
    let deadline = Instant::now() + START_TIMEOUT;
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, driver.swarm.select_next_some())
            .await
            .map_err(|_| MeshErr::other("timed out binding the listen addresses"))?;
        match &ev {
            SwarmEvent::NewListenAddr { listener_id, .. } => pending.retain(|l| l != listener_id),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason: Err(e),
                ..
            } if pending.contains(listener_id) => {
                return Err(MeshErr::address(format!("cannot listen: {e}")));
            }
            SwarmEvent::ListenerError { listener_id, error } if pending.contains(listener_id) => {
                return Err(MeshErr::address(format!("cannot listen: {error}")));
            }
            _ => {}
        }
        driver.on_swarm_event(ev);
    }
    Ok(driver)
}
