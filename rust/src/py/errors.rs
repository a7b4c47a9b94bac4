//! The one place where kernel errors become Python exceptions. The classes are
//! defined in Python (`peerpool.errors`), so the tree has a single definition;
//! here we look the class up by the name the error gives and build it with the
//! message and the input offset.

use crate::error::KernelError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Convert any kernel error into its `peerpool.errors` exception.
pub fn to_py_err<E: KernelError>(err: E) -> PyErr {
    Python::attach(|py| build(py, &err).unwrap_or_else(|import_failure| import_failure))
}

fn build<E: KernelError>(py: Python<'_>, err: &E) -> PyResult<PyErr> {
    let module = ERRORS
        .get_or_try_init(py, || py.import("peerpool.errors").map(Bound::unbind))?
        .bind(py);
    let class = module.getattr(err.py_class())?;
    let instance = class.call1((err.to_string(), err.offset()))?;
    Ok(PyErr::from_value(instance))
}

/// A bad argument caught at the binding edge (wrong length, shape, ...).
struct ArgumentError(String);

impl std::fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl KernelError for ArgumentError {
    fn py_class(&self) -> &'static str {
        "InputError"
    }
}

/// `peerpool.errors.InputError` (a PeerpoolError and a ValueError) for a bad argument.
pub fn input_error(message: impl Into<String>) -> PyErr {
    to_py_err(ArgumentError(message.into()))
}
