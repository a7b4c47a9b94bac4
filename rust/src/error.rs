//! What every kernel error can say about itself, so that the binding layer can
//! turn any of them into the right Python exception in one place.

/// A kernel error: a readable message, the name of the class in
/// `peerpool.errors` it becomes in Python, and where in the input it happened.
pub trait KernelError: std::fmt::Display {
    /// Name of the exception class in `peerpool.errors`.
    fn py_class(&self) -> &'static str;
    /// Byte offset in the input where the problem was found, if known.
    fn offset(&self) -> Option<u64> {
        None
    }
}

/// An error with the input offset where it happened, for kernels whose inner
/// decoder only sees a slice of the whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<E> {
    pub err: E,
    pub offset: u64,
}

impl<E: KernelError> std::fmt::Display for At<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.err, self.offset)
    }
}

impl<E: KernelError> KernelError for At<E> {
    fn py_class(&self) -> &'static str {
        self.err.py_class()
    }
    fn offset(&self) -> Option<u64> {
        Some(self.offset)
    }
}

/// `err.at(offset)`: attach the offset where an error happened.
pub trait Locate: Sized {
    fn at(self, offset: u64) -> At<Self> {
        At { err: self, offset }
    }
}

impl<E: KernelError> Locate for E {}
