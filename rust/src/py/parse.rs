//! Bindings of the columnar transaction parser (`bitcoin::parse`): the
//! result is a `Columns` object that hands out each column as a numpy array
//! (the (n, 32) hash columns flattened without a per-row object).

use super::chunk::Chunk;
use super::errors::{input_error, to_py_err};
use super::input::with_bytes;
use crate::bitcoin::parse::{self, Columns, ParseError};
use numpy::ndarray::ArrayView2;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The names of the columns, in the order `keys()` gives them.
const KEYS: [&str; 14] = [
    "tx_txid",
    "tx_offset",
    "tx_size",
    "out_tx",
    "out_index",
    "out_value",
    "out_script_offset",
    "out_script_len",
    "out_script_hash",
    "in_tx",
    "in_index",
    "in_prev_txid",
    "in_prev_index",
    "in_coinbase",
];

/// The parsed columns, read like a dict of numpy arrays. They stay in the
/// kernel's vectors until a column is asked for, so parsing a small block
/// costs one object, not fourteen arrays (most of the cost on a block of a
/// few transactions); each `cols[key]` is a fresh array (a copy).
#[pyclass(frozen, module = "peerpool._core", name = "Columns")]
pub struct PyColumns {
    cols: Columns,
}

fn column<'py>(py: Python<'py>, c: &Columns, key: &str) -> PyResult<Bound<'py, PyAny>> {
    // numpy allocates and we copy in: cheaper for small columns than handing
    // over a Vec (which needs a container object as the array's base)
    Ok(match key {
        "tx_txid" => hash_rows(py, &c.tx_txid)?,
        "tx_offset" => PyArray1::from_slice(py, &c.tx_offset).into_any(),
        "tx_size" => PyArray1::from_slice(py, &c.tx_size).into_any(),
        "out_tx" => PyArray1::from_slice(py, &c.out_tx).into_any(),
        "out_index" => PyArray1::from_slice(py, &c.out_index).into_any(),
        "out_value" => PyArray1::from_slice(py, &c.out_value).into_any(),
        "out_script_offset" => PyArray1::from_slice(py, &c.out_script_offset).into_any(),
        "out_script_len" => PyArray1::from_slice(py, &c.out_script_len).into_any(),
        "out_script_hash" => hash_rows(py, &c.out_script_hash)?,
        "in_tx" => PyArray1::from_slice(py, &c.in_tx).into_any(),
        "in_index" => PyArray1::from_slice(py, &c.in_index).into_any(),
        "in_prev_txid" => hash_rows(py, &c.in_prev_txid)?,
        "in_prev_index" => PyArray1::from_slice(py, &c.in_prev_index).into_any(),
        "in_coinbase" => PyArray1::from_slice(py, &c.in_coinbase).into_any(),
        other => return Err(PyKeyError::new_err(other.to_string())),
    })
}

/// An (n, 32) uint8 array copied from rows of hashes.
fn hash_rows<'py>(py: Python<'py>, rows: &[[u8; 32]]) -> PyResult<Bound<'py, PyAny>> {
    let flat = rows.as_flattened();
    let view =
        ArrayView2::from_shape((rows.len(), 32), flat).map_err(|e| input_error(e.to_string()))?;
    Ok(PyArray2::from_array(py, &view).into_any())
}

#[pymethods]
impl PyColumns {
    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        column(py, &self.cols, key)
    }

    fn __contains__(&self, key: &str) -> bool {
        KEYS.contains(&key)
    }

    fn __len__(&self) -> usize {
        KEYS.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, KEYS)?
            .as_any()
            .try_iter()
            .map(Bound::into_any)
    }

    /// The column names, as `peerpool.index.COLUMNS` lists them.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, KEYS)
    }

    /// Number of transactions, outputs and inputs.
    #[getter]
    fn counts(&self) -> (usize, usize, usize) {
        let c = &self.cols;
        (c.tx_txid.len(), c.out_tx.len(), c.in_tx.len())
    }

    /// Every column, as a plain dict (what to pickle or send to another process).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for key in KEYS {
            d.set_item(key, column(py, &self.cols, key)?)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let (t, o, i) = self.counts();
        format!("Columns({t} transactions, {o} outputs, {i} inputs)")
    }
}

fn finish(py: Python<'_>, parsed: Result<Columns, ParseError>) -> PyResult<Bound<'_, PyColumns>> {
    Bound::new(
        py,
        PyColumns {
            cols: parsed.map_err(to_py_err)?,
        },
    )
}

/// Columns of every transaction of a whole block.
#[pyfunction]
#[pyo3(signature = (block, allow_witness=true))]
fn parse_block<'py>(
    py: Python<'py>,
    block: &Bound<'py, PyAny>,
    allow_witness: bool,
) -> PyResult<Bound<'py, PyColumns>> {
    let parsed = with_bytes(block, |b| {
        py.detach(|| parse::parse_block(b, allow_witness))
    })?;
    finish(py, parsed)
}

/// Columns of a chunk: a `Chunk` (read in place), or bytes with the
/// absolute offsets of the transactions they hold.
#[pyfunction]
#[pyo3(signature = (data, offsets=None, allow_witness=true))]
fn parse_chunk<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    offsets: Option<&Bound<'py, PyAny>>,
    allow_witness: bool,
) -> PyResult<Bound<'py, PyColumns>> {
    if let Ok(chunk) = data.cast::<Chunk>() {
        if offsets.is_some() {
            return Err(input_error("a Chunk carries its own offsets"));
        }
        let (bytes, offsets) = chunk.get().parts(py);
        let offsets = offsets.bind(py).readonly();
        let offsets = offsets.as_slice()?;
        let parsed = py.detach(|| parse::parse_transactions(bytes, offsets, allow_witness));
        return finish(py, parsed);
    }
    let Some(offsets) = offsets else {
        return Err(input_error("offsets are needed unless data is a Chunk"));
    };
    let offsets: Vec<u64> = match offsets.extract::<PyReadonlyArray1<'py, u64>>() {
        Ok(array) => array.as_array().to_vec(),
        Err(_) => offsets
            .extract()
            .map_err(|_| input_error("offsets must be a uint64 array or a list of ints >= 0"))?,
    };
    let parsed = with_bytes(data, |d| {
        py.detach(|| parse::parse_transactions(d, &offsets, allow_witness))
    })?;
    finish(py, parsed)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyColumns>()?;
    m.add_function(wrap_pyfunction!(parse_block, m)?)?;
    m.add_function(wrap_pyfunction!(parse_chunk, m)?)?;
    Ok(())
}
