//! Binding of the mesh node (`crate::mesh`): argument conversion and result
//! tuples only. `peerpool.mesh.node` builds the public API on top. Errors
//! become `peerpool.errors` classes through `errors::to_py_err`, including the
//! ones that come back later in command replies (built here as exception
//! objects, so Python sets them on its futures as they are).

use super::errors::to_py_err;
use super::input::with_bytes;
use crate::mesh::{
    self, identity, Control, Event, MeshHandle, NodeConfig, PeerFacts, PubSub, Reply, SendStatus,
};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use std::borrow::Cow;
use std::time::Duration;

fn duration(seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        super::errors::input_error(format!("{seconds} is not a valid duration in seconds"))
    })
}

/// (peer_id, addrs, direction, relayed, connected_since)
fn facts_tuple<'py>(py: Python<'py>, f: PeerFacts) -> PyResult<Bound<'py, PyTuple>> {
    let direction = if f.outbound { "outbound" } else { "inbound" };
    let addrs = PyTuple::new(py, f.addrs)?;
    (f.peer_id, addrs, direction, f.relayed, f.since).into_pyobject(py)
}

fn event_tuple<'py>(py: Python<'py>, ev: Event) -> PyResult<Bound<'py, PyTuple>> {
    Ok(match ev {
        Event::Direct {
            peer,
            channel,
            payload,
            at,
        } => ("direct", peer, channel, PyBytes::new(py, &payload), at).into_pyobject(py)?,
        Event::Topic {
            topic,
            source,
            via,
            data,
            at,
        } => ("topic", topic, source, via, PyBytes::new(py, &data), at).into_pyobject(py)?,
        Event::Connected(f) => ("connected", facts_tuple(py, f)?).into_pyobject(py)?,
        Event::Disconnected { peer, cause } => ("disconnected", peer, cause).into_pyobject(py)?,
        Event::Dropped {
            reason,
            peer,
            count,
        } => ("dropped", reason, peer, count).into_pyobject(py)?,
    })
}

fn control_tuple<'py>(py: Python<'py>, c: Control) -> PyResult<Bound<'py, PyTuple>> {
    Ok(match c {
        Control::Reply { id, result } => match result {
            Ok(reply) => {
                let value: Bound<'py, PyAny> = match reply {
                    Reply::Unit => py.None().into_bound(py),
                    Reply::Peer(f) => facts_tuple(py, f)?.into_any(),
                    Reply::Time(t) => t.into_pyobject(py)?.into_any(),
                    Reply::Bytes(b) => PyBytes::new(py, &b).into_any(),
                };
                ("reply", id, true, value).into_pyobject(py)?
            }
            Err(e) => ("reply", id, false, to_py_err(e).into_value(py)).into_pyobject(py)?,
        },
        Control::Request {
            id,
            peer,
            protocol,
            payload,
        } => ("request", id, peer, protocol, PyBytes::new(py, &payload)).into_pyobject(py)?,
    })
}

/// A generated Ed25519 key in libp2p's protobuf encoding.
#[pyfunction]
fn mesh_identity_generate(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &identity::generate())
}

/// The peer id of a protobuf-encoded key (MeshIdentityError if it is not an Ed25519 key).
#[pyfunction]
fn mesh_identity_peer_id(key: &[u8]) -> PyResult<String> {
    identity::peer_id(key).map_err(to_py_err)
}

/// One `/unaiverse/chat/1.0.0` frame (for tests and tools; the node frames itself).
#[pyfunction]
fn mesh_encode_frame<'py>(
    py: Python<'py>,
    channel: &str,
    payload: &[u8],
    max_payload: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let f = mesh::frame::encode(channel, payload, max_payload)
        .map_err(|e| to_py_err(mesh::MeshErr::from(e)))?;
    Ok(PyBytes::new(py, &f))
}

#[pyclass(frozen, module = "peerpool._core", name = "MeshHandle")]
struct PyMeshHandle {
    inner: MeshHandle,
}

#[pymethods]
impl PyMeshHandle {
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (key, listen, external, pubsub, relay_server, max_connections, max_connections_per_peer,
                        request_protocols, max_message_size, max_request_size, event_queue_size, idle_timeout))]
    fn start(
        py: Python<'_>,
        key: Vec<u8>,
        listen: Vec<String>,
        external: Vec<String>,
        pubsub: &str,
        relay_server: bool,
        max_connections: Option<u32>,
        max_connections_per_peer: Option<u32>,
        request_protocols: Vec<String>,
        max_message_size: usize,
        max_request_size: usize,
        event_queue_size: usize,
        idle_timeout: f64,
    ) -> PyResult<Self> {
        let pubsub = match pubsub {
            "gossipsub" => PubSub::Gossipsub,
            "floodsub" => PubSub::Floodsub,
            "none" => PubSub::None,
            other => {
                return Err(super::errors::input_error(format!(
                    "pubsub must be gossipsub, floodsub or none, not {other:?}"
                )))
            }
        };
        let mut cfg = NodeConfig::new(key);
        cfg.listen = listen;
        cfg.external = external;
        cfg.pubsub = pubsub;
        cfg.relay_server = relay_server;
        cfg.max_connections = max_connections;
        cfg.max_connections_per_peer = max_connections_per_peer;
        cfg.request_protocols = request_protocols;
        cfg.max_message_size = max_message_size;
        cfg.max_request_size = max_request_size;
        cfg.event_queue_size = event_queue_size;
        cfg.idle_timeout = duration(idle_timeout)?;
        let inner = py.detach(|| MeshHandle::start(cfg)).map_err(to_py_err)?;
        Ok(PyMeshHandle { inner })
    }

    #[getter]
    fn peer_id(&self) -> &str {
        self.inner.peer_id()
    }

    fn notify_fd(&self) -> i32 {
        self.inner.notify_fd()
    }

    fn ack(&self) {
        self.inner.ack()
    }

    fn listen_addrs(&self) -> Vec<String> {
        self.inner.listen_addrs()
    }

    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .peers()
            .into_iter()
            .map(|f| facts_tuple(py, f))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn peer<'py>(&self, py: Python<'py>, peer_id: &str) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.inner
            .peer(peer_id)
            .map(|f| facts_tuple(py, f))
            .transpose()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.stats() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn drain_events<'py>(
        &self,
        py: Python<'py>,
        max_events: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = self.inner.drain_events(max_events);
        let mut items = Vec::with_capacity(events.len());
        // A batch is mostly one peer's frames on one channel: their strings are
        // made once per run, not once per message.
        let mut last: Option<(String, String, Bound<'py, PyString>, Bound<'py, PyString>)> = None;
        for ev in events {
            let Event::Direct {
                peer,
                channel,
                payload,
                at,
            } = ev
            else {
                items.push(event_tuple(py, ev)?);
                continue;
            };
            let (p, c) = match &last {
                Some((lp, lc, p, c)) if *lp == peer && *lc == channel => (p.clone(), c.clone()),
                _ => {
                    let p = PyString::new(py, &peer);
                    let c = PyString::new(py, &channel);
                    last = Some((peer, channel, p.clone(), c.clone()));
                    (p, c)
                }
            };
            items.push(("direct", p, c, PyBytes::new(py, &payload), at).into_pyobject(py)?);
        }
        PyList::new(py, items)
    }

    fn drain_control<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .drain_control()
            .into_iter()
            .map(|c| control_tuple(py, c))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn dial(&self, py: Python<'_>, id: u64, addrs: Vec<String>, timeout: f64) -> PyResult<()> {
        let t = duration(timeout)?;
        py.detach(|| self.inner.dial(id, &addrs, t))
            .map_err(to_py_err)
    }

    fn disconnect(&self, py: Python<'_>, id: u64, peer_id: &str) -> PyResult<()> {
        py.detach(|| self.inner.disconnect(id, peer_id))
            .map_err(to_py_err)
    }

    fn subscribe(&self, py: Python<'_>, id: u64, topic: &str, on: bool) -> PyResult<()> {
        py.detach(|| self.inner.subscribe(id, topic, on))
            .map_err(to_py_err)
    }

    fn publish(
        &self,
        py: Python<'_>,
        id: u64,
        topic: &str,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let data = with_bytes(data, <[u8]>::to_vec)?;
        py.detach(|| self.inner.publish(id, topic, data))
            .map_err(to_py_err)
    }

    fn reserve(&self, py: Python<'_>, id: u64, relay_addr: &str, timeout: f64) -> PyResult<()> {
        let t = duration(timeout)?;
        py.detach(|| self.inner.reserve(id, relay_addr, t))
            .map_err(to_py_err)
    }

    /// True: queued now. False: waiting for room, the reply comes under `id`.
    fn send(
        &self,
        py: Python<'_>,
        id: u64,
        peer_id: &str,
        channel: &str,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let status = with_bytes(payload, |p| {
            py.detach(|| self.inner.send(id, peer_id, channel, p))
        })?;
        Ok(status.map_err(to_py_err)? == SendStatus::Queued)
    }

    /// `send` of every payload in order, in one call (see MeshHandle::send_many).
    fn send_many(
        &self,
        py: Python<'_>,
        id: u64,
        peer_id: &str,
        channel: &str,
        payloads: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let items = payloads.try_iter()?.collect::<PyResult<Vec<_>>>()?;
        // bytes are borrowed (immutable, kept alive by `items`); other buffers copied
        let mut views: Vec<Cow<'_, [u8]>> = Vec::with_capacity(items.len());
        for item in &items {
            views.push(match item.cast::<PyBytes>() {
                Ok(b) => Cow::Borrowed(b.as_bytes()),
                Err(_) => Cow::Owned(PyBuffer::<u8>::get(item)?.to_vec(py)?),
            });
        }
        let status = py
            .detach(|| {
                self.inner
                    .send_many(id, peer_id, channel, views.iter().map(|v| v.as_ref()))
            })
            .map_err(to_py_err)?;
        Ok(status == SendStatus::Queued)
    }

    /// Test hook: raw bytes onto the peer's chat stream, unframed.
    fn send_raw(&self, py: Python<'_>, id: u64, peer_id: &str, data: Vec<u8>) -> PyResult<bool> {
        let status = py
            .detach(|| self.inner.send_raw(id, peer_id, data))
            .map_err(to_py_err)?;
        Ok(status == SendStatus::Queued)
    }

    fn request(
        &self,
        id: u64,
        peer_id: &str,
        protocol: &str,
        payload: Vec<u8>,
        timeout: f64,
    ) -> PyResult<()> {
        let t = duration(timeout)?;
        // With the GIL held: this only checks and spawns a task and never
        // waits, so releasing the GIL would buy nothing but a re-acquire.
        self.inner
            .request(id, peer_id, protocol, payload, t)
            .map_err(to_py_err)
    }

    /// The handler's answer: `ok` with the response bytes, or not with an error message.
    fn respond(&self, id: u64, ok: bool, body: &Bound<'_, PyAny>) -> PyResult<()> {
        let response = if ok {
            Ok(with_bytes(body, <[u8]>::to_vec)?)
        } else {
            Err(body.extract::<String>()?)
        };
        self.inner.respond(id, response);
        Ok(())
    }

    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.inner.stop())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mesh_identity_generate, m)?)?;
    m.add_function(wrap_pyfunction!(mesh_identity_peer_id, m)?)?;
    m.add_function(wrap_pyfunction!(mesh_encode_frame, m)?)?;
    m.add_class::<PyMeshHandle>()?;
    Ok(())
}
