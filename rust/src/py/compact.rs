//! Bindings of `compact`: CompactSize read and write.

use super::errors::to_py_err;
use super::input::unsigned;
use crate::compact;
use crate::error::Locate;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Decode the CompactSize at `offset` in `data`; returns (value, bytes used).
#[pyfunction]
#[pyo3(
    signature = (data, offset=0, limit=u64::MAX),
    text_signature = "(data, offset=0, limit=18446744073709551615)"
)]
fn read_compact_size(
    data: &[u8],
    #[pyo3(from_py_with = unsigned)] offset: u64,
    #[pyo3(from_py_with = unsigned)] limit: u64,
) -> PyResult<(u64, usize)> {
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let tail = data.get(offset..).unwrap_or(&[]);
    compact::read(tail, limit).map_err(|e| to_py_err(e.at(offset as u64)))
}

/// The minimal CompactSize encoding of `value`.
#[pyfunction]
fn write_compact_size(
    py: Python<'_>,
    #[pyo3(from_py_with = unsigned)] value: u64,
) -> Bound<'_, PyBytes> {
    let mut out = Vec::with_capacity(9);
    compact::write(value, &mut out);
    PyBytes::new(py, &out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_compact_size, m)?)?;
    m.add_function(wrap_pyfunction!(write_compact_size, m)?)?;
    Ok(())
}
