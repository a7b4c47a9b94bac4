//! Bindings of the columnar transaction parser (`bitcoin::parse`): the
//! result is a `Columns` object that hands out each column as a numpy array
//! (the (n, 32) hash columns flattened without a per-row object).

use super::chunk::Chunk;
use super::errors::{input_error, to_py_err};
use super::input::with_bytes;
use crate::bitcoin::parse::{self, Columns, ParseError};
use numpy::ndarray::ArrayView2;
use numpy::npyffi::NPY_ARRAY_WRITEABLE;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

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
/// few transactions). The first `cols[key]` hands the column to numpy and
/// later ones return that same array, read-only: a large column is moved
/// over without a copy (on a 100 MB block, copying the columns out and
/// faulting in fresh pages for them cost as much as parsing), a small one
/// is copied (a moved vector needs a container object as the array's base,
/// which costs more than copying a few rows).
#[pyclass(module = "peerpool._core", name = "Columns")]
pub struct PyColumns {
    cols: Columns,
    counts: (usize, usize, usize),
    arrays: [Option<Py<PyAny>>; KEYS.len()],
}

/// Columns of fewer bytes than this are copied into numpy, larger ones moved.
const MOVE_BYTES: usize = 64 << 10;

/// A column into a numpy array: moved when large, copied when small.
fn array_of<'py, T: numpy::Element + Copy>(py: Python<'py>, v: &mut Vec<T>) -> Bound<'py, PyAny> {
    if std::mem::size_of_val(v.as_slice()) < MOVE_BYTES {
        PyArray1::from_slice(py, v).into_any()
    } else {
        std::mem::take(v).into_pyarray(py).into_any()
    }
}

/// An (n, 32) uint8 array of rows of hashes (moved when large, copied when small).
fn hash_rows<'py>(py: Python<'py>, rows: &mut Vec<[u8; 32]>) -> PyResult<Bound<'py, PyAny>> {
    let n = rows.len();
    if n * 32 < MOVE_BYTES {
        let view = ArrayView2::from_shape((n, 32), rows.as_flattened())
            .map_err(|e| input_error(e.to_string()))?;
        return Ok(PyArray2::from_array(py, &view).into_any());
    }
    let flat = std::mem::take(rows).into_flattened().into_pyarray(py);
    Ok(flat.reshape([n, 32])?.into_any())
}

fn take_column<'py>(py: Python<'py>, c: &mut Columns, key: usize) -> PyResult<Bound<'py, PyAny>> {
    Ok(match KEYS[key] {
        "tx_txid" => hash_rows(py, &mut c.tx_txid)?,
        "tx_offset" => array_of(py, &mut c.tx_offset),
        "tx_size" => array_of(py, &mut c.tx_size),
        "out_tx" => array_of(py, &mut c.out_tx),
        "out_index" => array_of(py, &mut c.out_index),
        "out_value" => array_of(py, &mut c.out_value),
        "out_script_offset" => array_of(py, &mut c.out_script_offset),
        "out_script_len" => array_of(py, &mut c.out_script_len),
        "out_script_hash" => hash_rows(py, &mut c.out_script_hash)?,
        "in_tx" => array_of(py, &mut c.in_tx),
        "in_index" => array_of(py, &mut c.in_index),
        "in_prev_txid" => hash_rows(py, &mut c.in_prev_txid)?,
        "in_prev_index" => array_of(py, &mut c.in_prev_index),
        _ => array_of(py, &mut c.in_coinbase),
    })
}

/// Clear the array's WRITEABLE flag: it is shared by every `cols[key]`.
fn make_read_only(array: &Bound<'_, PyAny>) {
    if let Ok(array) = array.cast::<PyUntypedArray>() {
        // SAFETY: the array was just made here and nothing else holds it;
        // clearing WRITEABLE is what PyArray_CLEARFLAGS does.
        unsafe { (*array.as_array_ptr()).fields.flags &= !NPY_ARRAY_WRITEABLE };
    }
}

impl PyColumns {
    fn column<'py>(&mut self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let Some(k) = KEYS.iter().position(|&name| name == key) else {
            return Err(PyKeyError::new_err(key.to_string()));
        };
        if let Some(array) = &self.arrays[k] {
            return Ok(array.bind(py).clone());
        }
        let array = take_column(py, &mut self.cols, k)?;
        make_read_only(&array);
        self.arrays[k] = Some(array.clone().unbind());
        Ok(array)
    }
}

#[pymethods]
impl PyColumns {
    fn __getitem__<'py>(&mut self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.column(py, key)
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
        self.counts
    }

    /// Every column, as a plain dict (what to pickle or send to another process).
    #[pyo3(name = "to_dict")]
    fn all_columns<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for key in KEYS {
            d.set_item(key, self.column(py, key)?)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let (t, o, i) = self.counts();
        format!("Columns({t} transactions, {o} outputs, {i} inputs)")
    }
}

fn finish(py: Python<'_>, parsed: Result<Columns, ParseError>) -> PyResult<Bound<'_, PyColumns>> {
    let cols = parsed.map_err(to_py_err)?;
    let counts = (cols.tx_txid.len(), cols.out_tx.len(), cols.in_tx.len());
    Bound::new(
        py,
        PyColumns {
            cols,
            counts,
            arrays: Default::default(),
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

/// Rows `start..stop` of two buffers of fixed-width rows (keys and values)
/// as a list of `(key, value)` bytes pairs, what `lmdb.Cursor.putmulti`
/// takes. The index writer gets its pairs here in one call: slicing them in
/// a Python generator cost it more than LMDB's puts.
#[pyfunction]
fn row_pairs<'py>(
    py: Python<'py>,
    keys: &[u8],
    key_width: usize,
    values: &[u8],
    value_width: usize,
    start: usize,
    stop: usize,
) -> PyResult<Bound<'py, PyList>> {
    if key_width == 0 || value_width == 0 {
        return Err(input_error("row widths must be at least 1"));
    }
    let rows = (keys.len() / key_width).min(values.len() / value_width);
    if start > stop || stop > rows {
        return Err(input_error(format!(
            "rows {start}..{stop} are not within the {rows} rows"
        )));
    }
    let pairs = (start..stop).map(|i| {
        (
            PyBytes::new(py, &keys[i * key_width..(i + 1) * key_width]),
            PyBytes::new(py, &values[i * value_width..(i + 1) * value_width]),
        )
    });
    PyList::new(py, pairs)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyColumns>()?;
    m.add_function(wrap_pyfunction!(row_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(parse_block, m)?)?;
    m.add_function(wrap_pyfunction!(parse_chunk, m)?)?;
    Ok(())
}
