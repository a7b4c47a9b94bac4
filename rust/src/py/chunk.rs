//! The `Chunk` class: whole transactions of a block, cut for a worker.
//!
//! A chunk's bytes stay in the buffer the splitter filled: Python sees them
//! through a read-only memoryview of a `ChunkData`, and when the last view
//! and the chunk are gone the buffer goes back to the kernel's pool for a
//! later chunk (fresh 32 MiB buffers would fault their pages in every time).

use super::bitcoin::hashes_array;
use super::errors::input_error;
use crate::bitcoin::buffer_pool;
use crate::bitcoin::chunker::{self, ChunkBytes};
use crate::bitcoin::merkle;
use crate::bitcoin::txscan::WitnessLayout;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};
use std::os::raw::{c_int, c_void};

/// The bytes of a chunk cut here, exported through the buffer protocol.
/// Immutable (the class is frozen and the buffer read-only), so a view may
/// be read with the GIL released.
#[pyclass(frozen, module = "peerpool._core")]
pub struct ChunkData {
    bytes: ChunkBytes,
}

#[pymethods]
impl ChunkData {
    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let bytes = slf.get().bytes.as_slice();
        // SAFETY: the view points into a buffer owned by `slf`, which the
        // view keeps alive (FillInfo takes a reference); the buffer is never
        // written again. A request for a writable buffer fails with BufferError.
        let filled = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                bytes.as_ptr() as *mut c_void,
                bytes.len() as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if filled == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }
}

/// Where a chunk's bytes are: a pooled buffer of ours, or the `bytes` a
/// pickled chunk was rebuilt from.
enum Source {
    Pooled(Py<ChunkData>),
    Bytes(Py<PyBytes>),
}

impl Source {
    fn bytes<'a>(&'a self, py: Python<'a>) -> &'a [u8] {
        match self {
            Self::Pooled(data) => data.get().bytes.as_slice(),
            Self::Bytes(data) => data.as_bytes(py),
        }
    }
}

/// Whole transactions of a block, cut for a worker.
#[pyclass(frozen, module = "peerpool._core")]
pub struct Chunk {
    #[pyo3(get)]
    block_hash: Py<PyBytes>,
    #[pyo3(get)]
    chunk_num: u64,
    #[pyo3(get)]
    num_chunks: u64,
    #[pyo3(get)]
    start: u64,
    data: Source,
    #[pyo3(get)]
    tx_offsets: Py<PyArray1<u64>>,
    #[pyo3(get)]
    first_tx_index: u64,
    witness: Vec<WitnessLayout>,
}

#[pymethods]
impl Chunk {
    /// Rebuild a chunk (what pickling uses to send chunks to worker processes).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        block_hash: Py<PyBytes>,
        chunk_num: u64,
        num_chunks: u64,
        start: u64,
        data: Py<PyBytes>,
        tx_offsets: Py<PyArray1<u64>>,
        first_tx_index: u64,
        witness: Vec<(u64, u64)>,
    ) -> Self {
        Self {
            block_hash,
            chunk_num,
            num_chunks,
            start,
            data: Source::Bytes(data),
            tx_offsets,
            first_tx_index,
            witness: witness
                .into_iter()
                .map(|(tx_index, witness_start)| WitnessLayout {
                    tx_index,
                    witness_start,
                })
                .collect(),
        }
    }

    /// The chunk's bytes: a read-only memoryview of the buffer they arrived
    /// in (no copy; `bytes(chunk.data)` makes one).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        match &self.data {
            Source::Pooled(data) => PyMemoryView::from(data.bind(py).as_any()),
            Source::Bytes(data) => PyMemoryView::from(data.bind(py).as_any()),
        }
    }

    /// Txids of this chunk's transactions, as an (n, 32) array.
    fn txids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let data = self.data.bytes(py);
        let offsets = self.tx_offsets.bind(py).readonly();
        let offsets = offsets.as_slice()?;
        let (start, first, witness) = (self.start, self.first_tx_index, &self.witness);
        let in_range = offsets.windows(2).all(|w| w[0] < w[1])
            && offsets.first().is_none_or(|&o| o == start)
            && offsets
                .last()
                .is_none_or(|&o| o < start + data.len() as u64);
        if !in_range {
            return Err(input_error("chunk offsets do not fit its data"));
        }
        let ids = py.detach(|| merkle::txids(data, start, offsets, first, witness));
        Ok(hashes_array(py, ids))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let py = slf.py();
        let c = slf.get();
        let witness: Vec<(u64, u64)> = c
            .witness
            .iter()
            .map(|w| (w.tx_index, w.witness_start))
            .collect();
        let args = (
            c.block_hash.clone_ref(py),
            c.chunk_num,
            c.num_chunks,
            c.start,
            PyBytes::new(py, c.data.bytes(py)),
            c.tx_offsets.clone_ref(py),
            c.first_tx_index,
            witness,
        )
            .into_pyobject(py)?
            .into_any();
        Ok((slf.get_type().into_any(), args))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        // the block hash in display order (byte-reversed), as explorers show it
        let hash: String = self
            .block_hash
            .bind(py)
            .as_bytes()
            .iter()
            .rev()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "Chunk({} {}/{}, {} transactions from #{}, {} bytes)",
            hash,
            self.chunk_num + 1,
            self.num_chunks,
            PyUntypedArrayMethods::len(self.tx_offsets.bind(py)),
            self.first_tx_index,
            self.data.bytes(py).len()
        )
    }
}

impl Chunk {
    /// The chunk's bytes and transaction offsets, for kernels that read a
    /// chunk in place (both immutable, so readable with the GIL released).
    pub fn parts<'a>(&'a self, py: Python<'a>) -> (&'a [u8], &'a Py<PyArray1<u64>>) {
        (self.data.bytes(py), &self.tx_offsets)
    }

    /// The Python form of a chunk the kernel cut (its buffer moves, no copy).
    pub fn from_kernel(
        py: Python<'_>,
        chunk: chunker::Chunk,
        block_hash: [u8; 32],
    ) -> PyResult<Self> {
        let meta = chunk.meta;
        Ok(Self {
            block_hash: PyBytes::new(py, &block_hash).unbind(),
            chunk_num: meta.chunk_num,
            num_chunks: meta.num_chunks,
            start: meta.start,
            data: Source::Pooled(Py::new(py, ChunkData { bytes: chunk.data })?),
            tx_offsets: meta.tx_offsets.into_pyarray(py).unbind(),
            first_tx_index: meta.first_tx_index,
            witness: meta.witness,
        })
    }
}

/// Free the idle chunk buffers kept for reuse (at most two); returns the
/// bytes freed. For a process that is done with large blocks for a while.
#[pyfunction]
pub fn release_chunk_buffers() -> usize {
    buffer_pool::GLOBAL.release_idle()
}
