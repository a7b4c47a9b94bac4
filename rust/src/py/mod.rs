//! The Python bindings: the only code that imports pyo3. Each file binds one
//! kernel family; this one assembles the `peerpool._core` module.

mod bitcoin;
mod blocks;
mod chord;
mod chunk;
mod compact;
mod errors;
mod input;
mod mesh;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    compact::register(m)?;
    bitcoin::register(m)?;
    chord::register(m)?;
    mesh::register(m)?;
    Ok(())
}
