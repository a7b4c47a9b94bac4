//! peerpool's Rust kernels. This file is only a manifest: the kernels live in
//! plain Rust modules that know nothing of Python, and `py/` holds the one
//! `#[pymodule]` that binds them (compiled only with the `python` feature, so
//! `cargo test` runs without an interpreter).

pub mod bitcoin;
pub mod chord;
pub mod compact;
pub mod error;
pub mod hash;
pub mod mesh;

#[cfg(feature = "python")]
mod py;
