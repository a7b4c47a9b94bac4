//! Raw-bytes request/response on the configured protocols (the Chord DHT),
//! one stream per request, opened with libp2p-stream so that the caller picks
//! the exact protocol.
//!
//! A request is the bytes written before the requester closes its write side.
//! A response is one status byte then the body: `0` and the response bytes, or
//! `1` and a UTF-8 error message (so a handler's exception reaches the
//! requester as an error, not as an empty answer). Both are read with a limit
//! checked as the bytes arrive, never a blind `read_to_end`.

use super::error::MeshErr;
use super::events::{inc, Control, Reply};
use super::node::Shared;
use futures::prelude::*;
use libp2p::{PeerId, StreamProtocol};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

pub type Response = Result<Vec<u8>, String>;

const OK: u8 = 0;
const ERR: u8 = 1;
/// Inbound requests waiting for a Python handler at once; more are refused
/// (stream reset, counted) rather than queued without bound.
pub const MAX_INBOUND_PENDING: usize = 1024;
/// How long a remote may take to send its request.
const READ_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long our handler may take before the request is answered with an error.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn read_limited<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    // One byte more than allowed tells "exactly max" from "over max".
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    io.take(limit).read_to_end(&mut out).await?;
    if out.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over the limit of {max} bytes"),
        ));
    }
    Ok(out)
}

pub async fn read_response<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Response> {
    let body = read_limited(io, max.saturating_add(1)).await?;
    match body.split_first() {
        Some((&OK, rest)) => Ok(Ok(rest.to_vec())),
        Some((&ERR, rest)) => Ok(Err(String::from_utf8_lossy(rest).into_owned())),
        Some((other, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown response status {other}"),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty response",
        )),
    }
}

pub async fn write_response<T: AsyncWrite + Unpin>(io: &mut T, res: &Response) -> io::Result<()> {
    match res {
        Ok(body) => {
            io.write_all(&[OK]).await?;
            io.write_all(body).await?;
        }
        Err(message) => {
            io.write_all(&[ERR]).await?;
            io.write_all(message.as_bytes()).await?;
        }
    }
    io.close().await
}

/// An inbound request stream: answered by a task, or refused when too many wait.
pub fn accept(peer: PeerId, stream: libp2p::Stream, protocol: String, shared: Arc<Shared>) {
    if shared.lock_inbound().len() >= MAX_INBOUND_PENDING {
        shared
            .hub
            .drop_counted("requests_busy", Some(&peer.to_base58()), 1);
        return; // dropping the stream resets it
    }
    tokio::spawn(answer(peer, stream, protocol, shared));
}

async fn answer(peer: PeerId, mut stream: libp2p::Stream, protocol: String, shared: Arc<Shared>) {
    let peer_s = peer.to_base58();
    let request = match tokio::time::timeout(
        READ_REQUEST_TIMEOUT,
        read_limited(&mut stream, shared.max_request),
    )
    .await
    {
        Ok(Ok(r)) => r,
        _ => {
            shared.hub.drop_counted("bad_request", Some(&peer_s), 1);
            return;
        }
    };
    inc(&shared.hub.counters.requests_in, 1);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    shared.lock_inbound().insert(id, tx);
    shared.hub.push_control(Control::Request {
        id,
        peer: peer_s,
        protocol,
        payload: request,
    });
    let response = match tokio::time::timeout(HANDLER_TIMEOUT, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the node stopped".to_string()),
        Err(_) => Err("the request handler timed out".to_string()),
    };
    shared.lock_inbound().remove(&id);
    // The requester may have given up; nothing to do about a failed write.
    let _ = write_response(&mut stream, &response).await;
}

/// One outbound request; the reply goes to the control queue under `id`.
pub async fn call(
    id: u64,
    peer: PeerId,
    protocol: StreamProtocol,
    payload: Vec<u8>,
    timeout: Duration,
    mut control: libp2p_stream::Control,
    shared: Arc<Shared>,
) {
    let max = shared.max_request;
    let exchange = async {
        let mut stream = control
            .open_stream(peer, protocol.clone())
            .await
            .map_err(|e| MeshErr::request(format!("{protocol} to {peer}: {e}")))?;
        stream
            .write_all(&payload)
            .await
            .map_err(|e| MeshErr::request(format!("{protocol} to {peer}: writing: {e}")))?;
        stream
            .close()
            .await
            .map_err(|e| MeshErr::request(format!("{protocol} to {peer}: closing: {e}")))?;
        match read_response(&mut stream, max).await {
            Ok(Ok(body)) => Ok(Reply::Bytes(body)),
            Ok(Err(message)) => Err(MeshErr::request(format!(
                "{protocol} on {peer} failed: {message}"
            ))),
            Err(e) => Err(MeshErr::request(format!(
                "{protocol} to {peer}: reading: {e}"
            ))),
        }
    };
    inc(&shared.hub.counters.requests_out, 1);
    let result = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(MeshErr::request(format!(
            "{protocol} to {peer}: timed out after {timeout:?}"
        ))),
    };
    shared.hub.push_control(Control::Reply { id, result });
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn request_over_the_limit_is_an_error() {
        assert_eq!(
            block_on(read_limited(&mut &b"abcd"[..], 4)).unwrap(),
            b"abcd"
        );
        assert!(block_on(read_limited(&mut &b"abcde"[..], 4)).is_err());
    }

    #[test]
    fn responses_carry_ok_or_error() {
        let mut wire = Vec::new();
        block_on(write_response(&mut wire, &Ok(b"hi".to_vec()))).unwrap();
        assert_eq!(
            block_on(read_response(&mut &wire[..], 16)).unwrap(),
            Ok(b"hi".to_vec())
        );
        let mut wire = Vec::new();
        block_on(write_response(&mut wire, &Err("boom".into()))).unwrap();
        assert_eq!(
            block_on(read_response(&mut &wire[..], 16)).unwrap(),
            Err("boom".into())
        );
        assert!(block_on(read_response(&mut &b""[..], 16)).is_err());
        assert!(block_on(read_response(&mut &b"\x07x"[..], 16)).is_err());
    }
}
