//! Byte inputs at the edge: `bytes` is borrowed without a copy; any other
//! buffer (bytearray, memoryview, numpy) is copied first, because a mutable
//! buffer could change under us while the GIL is released.

use super::errors::input_error;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

pub fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(f(bytes.as_bytes()));
    }
    let buffer = PyBuffer::<u8>::get(obj)?;
    let copy = buffer.to_vec(obj.py())?;
    Ok(f(&copy))
}

/// An integer argument that must fit in a u64. A negative or too large value
/// is an `InputError` (a PeerpoolError), where pyo3 alone would raise
/// Python's OverflowError; a non-integer stays a TypeError.
pub fn unsigned(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    obj.extract::<u64>().map_err(|err| {
        if err.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) {
            input_error(format!("{obj} is out of range: expected 0 to 2**64 - 1"))
        } else {
            err
        }
    })
}

/// `unsigned`, or None.
pub fn optional_unsigned(obj: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    if obj.is_none() {
        return Ok(None);
    }
    unsigned(obj).map(Some)
}
