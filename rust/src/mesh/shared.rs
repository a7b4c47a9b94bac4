//! `Shared`: the state both sides of the node see, the handle on Python's
//! thread and the swarm loop on the runtime thread. The event hub, the limits,
//! and the maps each side writes and the other reads (chat writers and peer
//! facts by peer, listen addresses, inbound requests awaiting Python's answer,
//! outbound request links), each behind its own lock.
//!
//! Apart from the handle (`node.rs`) because the driver, the request streams
//! (`rpc.rs`) and the handle all hold it, and none of them owns it.

use super::chat::ChatPeer;
use super::events::{Hub, PeerFacts};
use super::rpc;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// State shared by the handle (Python's thread) and the runtime thread.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub max_payload: usize,
    pub max_request: usize,
    pub next_id: AtomicU64,
    chat: Mutex<HashMap<String, ChatPeer>>,
    peers: Mutex<HashMap<String, PeerFacts>>,
    listen: Mutex<Vec<String>>,
    inbound: Mutex<HashMap<u64, oneshot::Sender<rpc::Response>>>,
    /// Outbound request streams, one per peer and protocol.
    pub links: rpc::Links,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic elsewhere cannot leave these maps half-updated (single inserts/removes)
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(hub: Arc<Hub>, max_payload: usize, max_request: usize) -> Shared {
        Shared {
            hub,
            max_payload,
            max_request,
            next_id: AtomicU64::new(1 << 62), // apart from Python's command ids
            chat: Mutex::default(),
            peers: Mutex::default(),
            listen: Mutex::default(),
            inbound: Mutex::default(),
            links: rpc::Links::default(),
        }
    }

    pub fn lock_chat(&self) -> MutexGuard<'_, HashMap<String, ChatPeer>> {
        lock(&self.chat)
    }
    pub fn lock_peers(&self) -> MutexGuard<'_, HashMap<String, PeerFacts>> {
        lock(&self.peers)
    }
    pub fn lock_listen(&self) -> MutexGuard<'_, Vec<String>> {
        lock(&self.listen)
    }
    pub fn lock_inbound(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<rpc::Response>>> {
        lock(&self.inbound)
    }
}
