//! Bindings of `bitcoin::framing` and `bitcoin::headers`.

use super::chunk::Chunk;
use super::errors::{input_error, to_py_err};
use super::input::{optional_unsigned, unsigned, with_bytes};
use crate::bitcoin::block_stream::{BlockStream, Chunking, StreamEvent};
use crate::bitcoin::framing::{self, DecoderLimits, Event};
use crate::bitcoin::headers::{self, U256};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

fn magic_of(magic: &[u8]) -> PyResult<[u8; 4]> {
    magic
        .try_into()
        .map_err(|_| input_error("network magic must be 4 bytes"))
}

fn hash32(b: &[u8], what: &str) -> PyResult<[u8; 32]> {
    b.try_into()
        .map_err(|_| input_error(format!("{what} must be 32 bytes")))
}

/// Rows of 32-byte hashes as an (n, 32) uint8 array, without a per-row object.
pub fn hashes_array<'py>(py: Python<'py>, rows: Vec<[u8; 32]>) -> Bound<'py, PyArray2<u8>> {
    let n = rows.len();
    let flat: Vec<u8> = rows.into_iter().flatten().collect();
    Array2::from_shape_vec((n, 32), flat)
        .expect("n rows of 32 bytes")
        .into_pyarray(py)
}

/// A whole message: the header (24 bytes, or BSV's 44-byte extended header
/// for payloads of 4 GiB and more) and then `payload`, with its checksum.
///
/// Raises `InputError` when `magic` is not 4 bytes and
/// `MalformedCommandError` when `command` is empty, longer than 12 bytes or
/// not printable ASCII.
#[pyfunction]
fn encode_message<'py>(
    py: Python<'py>,
    magic: &[u8],
    command: &str,
    payload: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let magic = magic_of(magic)?;
    let framed = with_bytes(payload, |p| {
        py.detach(|| framing::encode_message(magic, command, p))
    })?
    .map_err(to_py_err)?;
    Ok(PyBytes::new(py, &framed))
}

/// The header alone, for a payload of `length` bytes sent separately (a
/// large block streamed from disk, say); `checksum` is the payload's first 4
/// bytes of double SHA-256 (zeros when None, and always in the extended header).
///
/// Raises `InputError` when `magic` or `checksum` is not 4 bytes and
/// `MalformedCommandError` for a bad `command`.
#[pyfunction]
#[pyo3(signature = (magic, command, length, checksum=None))]
fn encode_header<'py>(
    py: Python<'py>,
    magic: &[u8],
    command: &str,
    length: u64,
    checksum: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let sum: [u8; 4] = match checksum {
        Some(c) => c
            .try_into()
            .map_err(|_| input_error("checksum must be 4 bytes"))?,
        None => [0; 4],
    };
    let header =
        framing::encode_header(magic_of(magic)?, command, length, sum).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &header))
}

#[pyfunction]
fn checksum<'py>(py: Python<'py>, payload: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let sum = with_bytes(payload, |p| py.detach(|| framing::checksum_of(p)))?;
    Ok(PyBytes::new(py, &sum))
}

/// A complete message under the large-message threshold.
#[pyclass(frozen, module = "peerpool._core")]
pub struct Message {
    #[pyo3(get)]
    command: String,
    #[pyo3(get)]
    payload: Py<PyBytes>,
}

#[pymethods]
impl Message {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Message(command={:?}, payload=<{} bytes>)",
            self.command,
            self.payload.bind(py).as_bytes().len()
        )
    }
}

/// A large message begins; `LargeMessagePiece`s of its payload follow.
#[pyclass(frozen, module = "peerpool._core")]
pub struct LargeMessageStart {
    #[pyo3(get)]
    command: String,
    #[pyo3(get)]
    length: u64,
}

/// The next bytes of the current large payload.
#[pyclass(frozen, module = "peerpool._core")]
pub struct LargeMessagePiece {
    #[pyo3(get)]
    data: Py<PyBytes>,
}

/// The large payload is complete (its checksum, if any, verified).
#[pyclass(frozen, module = "peerpool._core")]
pub struct LargeMessageEnd {
    #[pyo3(get)]
    command: String,
    #[pyo3(get)]
    length: u64,
}

/// A chunked large block is complete: every chunk is out, its checksum is
/// verified and its transaction count matched. Ends what its
/// `LargeMessageStart` began, instead of a `LargeMessageEnd`.
#[pyclass(frozen, module = "peerpool._core")]
pub struct LargeBlockEnd {
    #[pyo3(get)]
    hash: Py<PyBytes>,
    #[pyo3(get)]
    header: Py<PyBytes>,
    #[pyo3(get)]
    size: u64,
    #[pyo3(get)]
    tx_count: u64,
    #[pyo3(get)]
    num_chunks: u64,
}

/// A push decoder for a stream of Bitcoin P2P messages.
#[pyclass(module = "peerpool._core")]
pub struct MessageDecoder {
    inner: BlockStream,
}

#[pymethods]
impl MessageDecoder {
    /// With `block_chunk_size`, a streamed `block` of at least
    /// `min_chunked_block` bytes comes out as `Chunk`s of that size (cut in
    /// the same call, from the input, with no separate pieces) and ends with
    /// a `LargeBlockEnd`.
    #[new]
    #[pyo3(signature = (
        magic, max_payload=32 << 20, large_threshold=32 << 20,
        block_chunk_size=None, min_chunked_block=0, allow_witness=true,
    ), text_signature = "(magic, max_payload=33554432, large_threshold=33554432, \
        block_chunk_size=None, min_chunked_block=0, allow_witness=True)")]
    fn new(
        magic: &[u8],
        #[pyo3(from_py_with = unsigned)] max_payload: u64,
        #[pyo3(from_py_with = unsigned)] large_threshold: u64,
        #[pyo3(from_py_with = optional_unsigned)] block_chunk_size: Option<u64>,
        #[pyo3(from_py_with = unsigned)] min_chunked_block: u64,
        allow_witness: bool,
    ) -> PyResult<Self> {
        if block_chunk_size == Some(0) {
            return Err(input_error("block_chunk_size must be positive"));
        }
        let limits = DecoderLimits {
            max_payload,
            large_threshold,
        };
        let chunking = block_chunk_size.map(|chunk_size| Chunking {
            chunk_size,
            allow_witness,
            min_block_size: min_chunked_block,
        });
        Ok(Self {
            inner: BlockStream::new(magic_of(magic)?, limits, chunking),
        })
    }

    /// Feed bytes from the stream; returns the events they complete. When
    /// the stream breaks, the exception's `events` attribute holds the
    /// events this call decoded before the error (they arrived intact).
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let inner = &mut self.inner;
        with_bytes(data, |input| {
            let mut events = Vec::new();
            let result = py.detach(|| inner.feed(input, &mut events));
            let list = events_list(py, events, input)?;
            match result {
                Ok(()) => Ok(list),
                Err(err) => {
                    let err = to_py_err(err);
                    err.value(py).setattr("events", list)?;
                    Err(err)
                }
            }
        })?
    }

    /// Bytes consumed from the stream so far.
    #[getter]
    fn consumed(&self) -> u64 {
        self.inner.consumed()
    }

    /// True when no partial message is held.
    #[getter]
    fn at_boundary(&self) -> bool {
        self.inner.at_boundary()
    }
}

/// The decoder's events as Python objects, payloads resolved against `input`.
fn events_list<'py>(
    py: Python<'py>,
    events: Vec<StreamEvent>,
    input: &[u8],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for event in events {
        let event = match event {
            StreamEvent::Frame(event) => event,
            StreamEvent::Chunk { chunk, block_hash } => {
                list.append(Chunk::from_kernel(py, chunk, block_hash)?)?;
                continue;
            }
            StreamEvent::BlockEnd(block) => {
                list.append(LargeBlockEnd {
                    hash: PyBytes::new(py, &block.hash).unbind(),
                    header: PyBytes::new(py, &block.header).unbind(),
                    size: block.size,
                    tx_count: block.tx_count,
                    num_chunks: block.num_chunks,
                })?;
                continue;
            }
        };
        match event {
            Event::Message { command, payload } => list.append(Message {
                command,
                payload: PyBytes::new(py, payload.resolve(input)).unbind(),
            })?,
            Event::LargeStart { command, length } => {
                list.append(LargeMessageStart { command, length })?
            }
            Event::LargePiece(piece) => list.append(LargeMessagePiece {
                data: PyBytes::new(py, piece.resolve(input)).unbind(),
            })?,
            Event::LargeEnd { command, length } => {
                list.append(LargeMessageEnd { command, length })?
            }
        }
    }
    Ok(list)
}

/// The block hash of one 80-byte header (double SHA-256, internal byte order).
///
/// Raises `HeaderError` when `header` is not 80 bytes.
#[pyfunction]
fn hash_header<'py>(py: Python<'py>, header: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let h = headers::hash_header(header).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &h))
}

/// The hashes of 80-byte headers back to back, as an (n, 32) uint8 array,
/// with the GIL released.
///
/// Raises `HeaderError` when the length is not a multiple of 80.
#[pyfunction]
fn hash_headers<'py>(
    py: Python<'py>,
    buf: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<u8>>> {
    let hashes = with_bytes(buf, |b| py.detach(|| headers::hash_headers(b)))?.map_err(to_py_err)?;
    Ok(hashes_array(py, hashes))
}

/// The 256-bit target encoded by compact `bits`, as 32 big-endian bytes.
#[pyfunction]
fn bits_to_target_bytes<'py>(py: Python<'py>, bits: u32) -> PyResult<Bound<'py, PyBytes>> {
    let t = headers::bits_to_target(bits).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &t.to_be_bytes()))
}

/// Compact `bits` for a target given as 32 big-endian bytes.
#[pyfunction]
fn target_bytes_to_bits(target: &[u8]) -> PyResult<u32> {
    Ok(headers::target_to_bits(U256::from_be_bytes(&hash32(
        target, "target",
    )?)))
}

fn pow_limit_of(pow_limit: Option<&[u8]>) -> PyResult<Option<U256>> {
    pow_limit
        .map(|l| hash32(l, "pow_limit").map(|b| U256::from_be_bytes(&b)))
        .transpose()
}

/// Check one 80-byte header's proof of work; raises HeaderError.
#[pyfunction]
#[pyo3(signature = (header, pow_limit=None))]
fn check_pow(header: &[u8], pow_limit: Option<&[u8]>) -> PyResult<()> {
    let hash = headers::hash_header(header).map_err(to_py_err)?;
    let bits = u32::from_le_bytes([header[72], header[73], header[74], header[75]]);
    headers::check_pow(&hash, bits, pow_limit_of(pow_limit)?).map_err(to_py_err)
}

type BatchResult<'py> = (
    Bound<'py, PyArray2<u8>>,
    Option<usize>,
    Option<&'static str>,
    Option<String>,
);

/// Check linkage and proof of work of consecutive headers in one call.
/// Returns (hashes, index of the first failure, reason code, message).
#[pyfunction]
#[pyo3(signature = (buf, prev_hash=None, pow_limit=None))]
fn check_headers<'py>(
    py: Python<'py>,
    buf: &Bound<'py, PyAny>,
    prev_hash: Option<&[u8]>,
    pow_limit: Option<&[u8]>,
) -> PyResult<BatchResult<'py>> {
    let prev = prev_hash.map(|p| hash32(p, "prev_hash")).transpose()?;
    let limit = pow_limit_of(pow_limit)?;
    let check = with_bytes(buf, |b| {
        py.detach(|| headers::check_headers(b, prev, limit))
    })?
    .map_err(to_py_err)?;
    let (index, code, message) = match check.failure {
        Some((i, e)) => (Some(i), Some(e.code()), Some(e.to_string())),
        None => (None, None, None),
    };
    Ok((hashes_array(py, check.hashes), index, code, message))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_message, m)?)?;
    m.add_function(wrap_pyfunction!(encode_header, m)?)?;
    m.add_function(wrap_pyfunction!(checksum, m)?)?;
    m.add_class::<MessageDecoder>()?;
    m.add_class::<Message>()?;
    m.add_class::<LargeMessageStart>()?;
    m.add_class::<LargeMessagePiece>()?;
    m.add_class::<LargeMessageEnd>()?;
    m.add_class::<LargeBlockEnd>()?;
    m.add_function(wrap_pyfunction!(hash_header, m)?)?;
    m.add_function(wrap_pyfunction!(hash_headers, m)?)?;
    m.add_function(wrap_pyfunction!(bits_to_target_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(target_bytes_to_bits, m)?)?;
    m.add_function(wrap_pyfunction!(check_pow, m)?)?;
    m.add_function(wrap_pyfunction!(check_headers, m)?)?;
    super::blocks::register(m)
}
