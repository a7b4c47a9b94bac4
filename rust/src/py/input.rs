//! Byte inputs at the edge: `bytes` is borrowed without a copy; any other
//! buffer (bytearray, memoryview, numpy) is copied first, because a mutable
//! buffer could change under us while the GIL is released.

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
