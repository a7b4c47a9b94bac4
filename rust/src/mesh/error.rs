//! The mesh's one error type. Each kind names its class in `peerpool.errors`;
//! `rust/src/py/errors.rs` turns it into that exception, in one place.

use crate::error::KernelError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Identity,
    Address,
    Dial,
    NotConnected,
    Frame,
    Request,
    Closed,
    /// Anything else the node refuses (a bad configuration, a failed listen).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshErr {
    pub kind: Kind,
    pub message: String,
}

impl MeshErr {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        MeshErr {
            kind,
            message: message.into(),
        }
    }
    pub fn identity(m: impl Into<String>) -> Self {
        Self::new(Kind::Identity, m)
    }
    pub fn address(m: impl Into<String>) -> Self {
        Self::new(Kind::Address, m)
    }
    pub fn dial(m: impl Into<String>) -> Self {
        Self::new(Kind::Dial, m)
    }
    pub fn not_connected(peer: impl fmt::Display) -> Self {
        Self::new(Kind::NotConnected, format!("not connected to {peer}"))
    }
    pub fn request(m: impl Into<String>) -> Self {
        Self::new(Kind::Request, m)
    }
    pub fn closed() -> Self {
        Self::new(Kind::Closed, "the mesh node is stopped")
    }
    pub fn other(m: impl Into<String>) -> Self {
        Self::new(Kind::Other, m)
    }
}

impl fmt::Display for MeshErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MeshErr {}

impl KernelError for MeshErr {
    fn py_class(&self) -> &'static str {
        match self.kind {
            Kind::Identity => "MeshIdentityError",
            Kind::Address => "MeshAddressError",
            Kind::Dial => "MeshDialError",
            Kind::NotConnected => "MeshNotConnectedError",
            Kind::Frame => "MeshFrameError",
            Kind::Request => "MeshRequestError",
            Kind::Closed => "MeshClosedError",
            Kind::Other => "MeshError",
        }
    }
}

impl From<super::frame::FrameError> for MeshErr {
    fn from(e: super::frame::FrameError) -> Self {
        MeshErr::new(Kind::Frame, e.to_string())
    }
}
