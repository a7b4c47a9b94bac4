//! Bindings of `chord`: the five hashes of keys, ring distances, closest_before.
//!
//! Keys are `bytes` or `str` (hashed as UTF-8), borrowed in place, never
//! copied. Batches of ids are C-contiguous uint8 arrays of shape (n, 48) and
//! results come back the same way, as arrays that own the Rust buffer. Batch
//! work runs with the GIL released; like numpy's own kernels, we read the
//! caller's arrays in place meanwhile, so another thread writing to them at
//! the same time gets unspecified (but memory-safe for Python) results.

use super::errors::to_py_err;
use crate::chord::{self, RingId, ID_BYTES, SHA512_BYTES};
use crate::error::KernelError;
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use std::fmt;

/// Keys at least this long are hashed with the GIL released; below it the
/// release and re-acquire would cost more than the hashing (a few hundred ns).
const DETACH_KEY_BYTES: usize = 4096;

/// Bad arguments found here, before the kernel runs: they are ring-id errors
/// in Python like the kernel's own.
struct ArgError(String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl KernelError for ArgError {
    fn py_class(&self) -> &'static str {
        "RingIdError"
    }
}

fn arg_error(message: String) -> PyErr {
    to_py_err(ArgError(message))
}

/// The bytes a key is hashed as: a `bytes` as is, a `str` as UTF-8.
fn key_bytes<'a>(key: &'a Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<&'a [u8]> {
    if let Ok(bytes) = key.cast::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    if let Ok(text) = key.cast::<PyString>() {
        // Fails only for lone surrogates, which have no UTF-8 encoding.
        return text
            .to_str()
            .map(str::as_bytes)
            .map_err(|_| arg_error(format!("{} is a str with no UTF-8 encoding", what())));
    }
    let type_name = key.get_type().name()?;
    Err(arg_error(format!(
        "{} must be bytes or str, not {type_name}",
        what()
    )))
}

/// The rows of an (n, 48) id array as one flat slice.
fn id_rows<'a>(ids: &'a PyReadonlyArray2<'_, u8>, what: &str) -> PyResult<&'a [u8]> {
    let width = ids.shape()[1];
    if width != ID_BYTES {
        return Err(arg_error(format!(
            "{what} must have rows of {ID_BYTES} bytes, not {width}"
        )));
    }
    ids.as_slice()
        .map_err(|_| arg_error(format!("{what} must be a C-contiguous array")))
}

fn one_id<'a>(id: &'a [u8], what: &str) -> PyResult<&'a RingId> {
    id.try_into()
        .map_err(|_| arg_error(format!("{what} must be {ID_BYTES} bytes, not {}", id.len())))
}

fn to_rows(py: Python<'_>, buf: Vec<u8>, width: usize) -> PyResult<Bound<'_, PyArray2<u8>>> {
    let n = buf.len() / width;
    buf.into_pyarray(py).reshape([n, width])
}

/// The five hashes of one key as big-endian bytes: SHA-1, SHA-224 and SHA-256
/// shifted left to fill 48 bytes, SHA-384 (48 bytes), SHA-512 (64 bytes).
#[pyfunction]
fn chord_hashes<'py>(py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    let key = key_bytes(key, &|| "key".to_owned())?;
    let h = if key.len() >= DETACH_KEY_BYTES {
        py.detach(|| chord::hash_key(key))
    } else {
        chord::hash_key(key)
    };
    let columns: [&[u8]; 5] = [&h.sha1, &h.sha224, &h.sha256, &h.sha384, &h.sha512];
    PyTuple::new(py, columns.map(|c| PyBytes::new(py, c)))
}

type HashArrays<'py> = (
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray2<u8>>,
);

/// The five hashes of every key in an iterable of bytes/str, as five arrays:
/// (n, 48) for SHA-1, SHA-224, SHA-256 (shifted) and SHA-384, (n, 64) for SHA-512.
#[pyfunction]
fn chord_hashes_batch<'py>(py: Python<'py>, keys: &Bound<'py, PyAny>) -> PyResult<HashArrays<'py>> {
    // A lone bytes or str is iterable too (by ints or characters): refuse it
    // rather than hash its pieces.
    if keys.is_instance_of::<PyBytes>() || keys.is_instance_of::<PyString>() {
        return Err(arg_error(
            "keys must be an iterable of keys, not a single bytes or str".to_owned(),
        ));
    }
    // Owned references keep every key alive while the GIL is released.
    let items = keys.try_iter()?.collect::<PyResult<Vec<_>>>()?;
    let slices = items
        .iter()
        .enumerate()
        .map(|(i, key)| key_bytes(key, &|| format!("keys[{i}]")))
        .collect::<PyResult<Vec<&[u8]>>>()?;
    let cols = py.detach(|| chord::hash_keys(&slices));
    Ok((
        to_rows(py, cols.sha1, ID_BYTES)?,
        to_rows(py, cols.sha224, ID_BYTES)?,
        to_rows(py, cols.sha256, ID_BYTES)?,
        to_rows(py, cols.sha384, ID_BYTES)?,
        to_rows(py, cols.sha512, SHA512_BYTES)?,
    ))
}

/// Clockwise distances `(target - origin) mod limit`, row by row, where a
/// one-row side is used against every row of the other. `limit` is 48
/// big-endian bytes, or None for the full 2^384 ring.
#[pyfunction]
#[pyo3(signature = (origins, targets, limit=None))]
fn chord_distances<'py>(
    py: Python<'py>,
    origins: PyReadonlyArray2<'py, u8>,
    targets: PyReadonlyArray2<'py, u8>,
    limit: Option<&[u8]>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let origins = id_rows(&origins, "origins")?;
    let targets = id_rows(&targets, "targets")?;
    let limit = limit.map(|l| one_id(l, "limit")).transpose()?;
    let out = py
        .detach(|| chord::distances(origins, targets, limit))
        .map_err(to_py_err)?;
    to_rows(py, out, ID_BYTES)
}

/// Index of the row of `ids` closest before `key` (48 bytes) clockwise: the
/// one minimising `(key - id) mod 2^384`. An id equal to the key wins; ties go
/// to the smallest index.
#[pyfunction]
fn chord_closest_before(
    py: Python<'_>,
    ids: PyReadonlyArray2<'_, u8>,
    key: &[u8],
) -> PyResult<usize> {
    let ids = id_rows(&ids, "ids")?;
    let key = one_id(key, "key")?;
    py.detach(|| chord::closest_before(ids, key))
        .map_err(to_py_err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(chord_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(chord_hashes_batch, m)?)?;
    m.add_function(wrap_pyfunction!(chord_distances, m)?)?;
    m.add_function(wrap_pyfunction!(chord_closest_before, m)?)?;
    Ok(())
}
