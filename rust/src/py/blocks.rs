//! Bindings of the transaction preprocessor, the chunk splitter, txids and
//! merkle roots.

use super::bitcoin::hashes_array;
use super::chunk::Chunk;
use super::errors::{input_error, to_py_err};
use super::input::{optional_unsigned, unsigned, with_bytes};
use crate::bitcoin::chunker;
use crate::bitcoin::merkle;
use crate::bitcoin::txscan;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

const DEFAULT_CHUNK_SIZE: u64 = chunker::DEFAULT_CHUNK_SIZE;

/// Start offsets of every transaction of a whole block (uint64 array).
#[pyfunction]
#[pyo3(signature = (block, allow_witness=true))]
fn tx_offsets<'py>(
    py: Python<'py>,
    block: &Bound<'py, PyAny>,
    allow_witness: bool,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let offsets = with_bytes(block, |b| {
        py.detach(|| txscan::tx_offsets(b, allow_witness))
    })?
    .map_err(to_py_err)?;
    Ok(offsets.into_pyarray(py))
}

type OffsetsAndTxids<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray2<u8>>);

/// Offsets and txids of every transaction of a whole block.
#[pyfunction]
#[pyo3(signature = (block, allow_witness=true))]
fn block_txids<'py>(
    py: Python<'py>,
    block: &Bound<'py, PyAny>,
    allow_witness: bool,
) -> PyResult<OffsetsAndTxids<'py>> {
    let (offsets, ids) = with_bytes(block, |b| {
        py.detach(|| {
            txscan::scan_block(b, allow_witness).map(|(offsets, witness)| {
                let first = offsets[0] as usize;
                let ids = merkle::txids(&b[first..], first as u64, &offsets, 0, &witness);
                (offsets, ids)
            })
        })
    })?
    .map_err(to_py_err)?;
    Ok((offsets.into_pyarray(py), hashes_array(py, ids)))
}

/// Txids of `count` consecutive transactions that fill `data` exactly.
#[pyfunction]
#[pyo3(signature = (data, count, allow_witness=true))]
fn transaction_txids<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = unsigned)] count: u64,
    allow_witness: bool,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let ids = with_bytes(data, |d| {
        py.detach(|| {
            txscan::scan_transactions(d, count, allow_witness)
                .map(|(offsets, witness)| merkle::txids(d, 0, &offsets, 0, &witness))
        })
    })?
    .map_err(to_py_err)?;
    Ok(hashes_array(py, ids))
}

/// The merkle root of an (n, 32) array of txids (internal byte order).
#[pyfunction]
fn merkle_root<'py>(
    py: Python<'py>,
    txids: PyReadonlyArray2<'py, u8>,
) -> PyResult<Bound<'py, PyBytes>> {
    let view = txids.as_array();
    if view.ncols() != 32 {
        return Err(input_error("txids must have shape (n, 32)"));
    }
    let rows: Vec<[u8; 32]> = view
        .rows()
        .into_iter()
        .map(|r| {
            let mut h = [0u8; 32];
            h.iter_mut().zip(r.iter()).for_each(|(d, s)| *d = *s);
            h
        })
        .collect();
    let root = py
        .detach(|| merkle::merkle_root(&rows))
        .ok_or_else(|| input_error("no txids"))?;
    Ok(PyBytes::new(py, &root))
}

/// The resumable transaction preprocessor.
#[pyclass(module = "peerpool._core")]
pub struct TxScanner {
    inner: txscan::TxScanner,
}

#[pymethods]
impl TxScanner {
    #[new]
    #[pyo3(signature = (block_size=None, allow_witness=true))]
    fn new(
        #[pyo3(from_py_with = optional_unsigned)] block_size: Option<u64>,
        allow_witness: bool,
    ) -> Self {
        Self {
            inner: txscan::TxScanner::for_block(block_size, allow_witness),
        }
    }

    /// Feed the next bytes of the block.
    fn feed(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let inner = &mut self.inner;
        with_bytes(data, |d| py.detach(|| inner.feed(d)))?.map_err(to_py_err)
    }

    /// Raise unless the data ended exactly after the block's last transaction.
    fn finish(&self) -> PyResult<()> {
        self.inner.finish().map_err(to_py_err)
    }

    /// Start offsets of the transactions found so far (the last may be incomplete).
    #[getter]
    fn offsets<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.offsets().to_vec().into_pyarray(py)
    }

    #[getter]
    fn completed(&self) -> u64 {
        self.inner.completed()
    }

    #[getter]
    fn last_tx_end(&self) -> u64 {
        self.inner.last_tx_end()
    }

    #[getter]
    fn position(&self) -> u64 {
        self.inner.position()
    }

    #[getter]
    fn tx_count(&self) -> Option<u64> {
        self.inner.tx_count()
    }

    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.header().map(|h| PyBytes::new(py, h))
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.is_done()
    }
}

/// Cuts a block fed as it arrives into chunks of whole transactions.
#[pyclass(module = "peerpool._core")]
pub struct BlockChunker {
    inner: chunker::BlockChunker,
}

#[pymethods]
impl BlockChunker {
    #[new]
    // text_signature: pyo3 writes `...` for a default that is not a literal
    #[pyo3(
        signature = (block_size, chunk_size=DEFAULT_CHUNK_SIZE, allow_witness=true),
        text_signature = "(block_size, chunk_size=33554432, allow_witness=True)"
    )]
    fn new(
        #[pyo3(from_py_with = unsigned)] block_size: u64,
        #[pyo3(from_py_with = unsigned)] chunk_size: u64,
        allow_witness: bool,
    ) -> PyResult<Self> {
        let inner =
            chunker::BlockChunker::new(block_size, chunk_size, allow_witness).map_err(to_py_err)?;
        Ok(Self { inner })
    }

    /// Feed the next bytes; returns the chunks they complete, in order.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        with_bytes(data, |input| {
            let list = PyList::empty(py);
            let mut rest = input;
            while !rest.is_empty() {
                let inner = &mut self.inner;
                let (used, chunk) = py.detach(|| inner.feed_step(rest)).map_err(to_py_err)?;
                if let Some(chunk) = chunk {
                    // A chunk is cut after the header, so the hash is known.
                    let hash = self.inner.block_hash().unwrap_or_default();
                    list.append(Chunk::from_kernel(py, chunk, hash)?)?;
                }
                rest = &rest[used..];
            }
            Ok(list)
        })?
    }

    #[getter]
    fn num_chunks(&self) -> u64 {
        self.inner.num_chunks()
    }
    #[getter]
    fn block_size(&self) -> u64 {
        self.inner.block_size()
    }
    #[getter]
    fn chunk_size(&self) -> u64 {
        self.inner.chunk_size()
    }
    #[getter]
    fn position(&self) -> u64 {
        self.inner.position()
    }
    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.header().map(|h| PyBytes::new(py, h))
    }
    #[getter]
    fn block_hash<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.block_hash().map(|h| PyBytes::new(py, &h))
    }
    #[getter]
    fn tx_count(&self) -> Option<u64> {
        self.inner.tx_count()
    }
    #[getter]
    fn done(&self) -> bool {
        self.inner.is_done()
    }
    /// Block bytes held right now (at most the chunk size plus one straddling transaction).
    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tx_offsets, m)?)?;
    m.add_function(wrap_pyfunction!(block_txids, m)?)?;
    m.add_function(wrap_pyfunction!(transaction_txids, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_class::<TxScanner>()?;
    m.add_class::<Chunk>()?;
    m.add_function(wrap_pyfunction!(super::chunk::release_chunk_buffers, m)?)?;
    m.add_class::<BlockChunker>()?;
    Ok(())
}
