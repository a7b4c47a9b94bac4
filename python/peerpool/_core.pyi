"""Hand-written stubs of the Rust extension, checked with `python -m mypy.stubtest peerpool._core`."""

from collections.abc import Iterable
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BlockChunker",
    "Chunk",
    "LargeBlockEnd",
    "LargeMessageEnd",
    "LargeMessagePiece",
    "LargeMessageStart",
    "Message",
    "MessageDecoder",
    "TxScanner",
    "bits_to_target_bytes",
    "block_txids",
    "check_headers",
    "check_pow",
    "checksum",
    "chord_closest_before",
    "chord_distances",
    "chord_hashes",
    "chord_hashes_batch",
    "encode_header",
    "encode_message",
    "hash_header",
    "hash_headers",
    "merkle_root",
    "read_compact_size",
    "release_chunk_buffers",
    "target_bytes_to_bits",
    "transaction_txids",
    "tx_offsets",
    "write_compact_size",
]

# --- chord ---

def chord_hashes(key: bytes | str) -> tuple[bytes, bytes, bytes, bytes, bytes]: ...
def chord_hashes_batch(
    keys: Iterable[bytes | str],
) -> tuple[
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
]: ...
def chord_distances(
    origins: npt.NDArray[np.uint8],
    targets: npt.NDArray[np.uint8],
    limit: bytes | None = None,
) -> npt.NDArray[np.uint8]: ...
def chord_closest_before(ids: npt.NDArray[np.uint8], key: bytes) -> int: ...

# --- compact ---

def read_compact_size(data: bytes, offset: int = 0, limit: int = ...) -> tuple[int, int]: ...
def write_compact_size(value: int) -> bytes: ...

# --- bitcoin: framing ---

_Bytes = bytes | bytearray | memoryview

def encode_message(magic: bytes, command: str, payload: _Bytes) -> bytes: ...
def encode_header(
    magic: bytes, command: str, length: int, checksum: bytes | None = None
) -> bytes: ...
def checksum(payload: _Bytes) -> bytes: ...

@final
class Message:
    @property
    def command(self) -> str: ...
    @property
    def payload(self) -> bytes: ...

@final
class LargeMessageStart:
    @property
    def command(self) -> str: ...
    @property
    def length(self) -> int: ...

@final
class LargeMessagePiece:
    @property
    def data(self) -> bytes: ...

@final
class LargeMessageEnd:
    @property
    def command(self) -> str: ...
    @property
    def length(self) -> int: ...

@final
class LargeBlockEnd:
    @property
    def hash(self) -> bytes: ...
    @property
    def header(self) -> bytes: ...
    @property
    def size(self) -> int: ...
    @property
    def tx_count(self) -> int: ...
    @property
    def num_chunks(self) -> int: ...

@final
class MessageDecoder:
    def __new__(
        cls,
        magic: bytes,
        max_payload: int = ...,
        large_threshold: int = ...,
        block_chunk_size: int | None = ...,
        min_chunked_block: int = ...,
        allow_witness: bool = ...,
    ) -> MessageDecoder: ...
    def feed(
        self, data: _Bytes
    ) -> list[
        Message | LargeMessageStart | LargeMessagePiece | LargeMessageEnd | Chunk | LargeBlockEnd
    ]: ...
    @property
    def consumed(self) -> int: ...
    @property
    def at_boundary(self) -> bool: ...

# --- bitcoin: headers ---

def hash_header(header: bytes) -> bytes: ...
def hash_headers(buf: _Bytes) -> npt.NDArray[np.uint8]: ...
def bits_to_target_bytes(bits: int) -> bytes: ...
def target_bytes_to_bits(target: bytes) -> int: ...
def check_pow(header: bytes, pow_limit: bytes | None = None) -> None: ...
def check_headers(
    buf: _Bytes, prev_hash: bytes | None = None, pow_limit: bytes | None = None
) -> tuple[npt.NDArray[np.uint8], int | None, str | None, str | None]: ...

# --- bitcoin: blocks ---

def tx_offsets(block: _Bytes, allow_witness: bool = True) -> npt.NDArray[np.uint64]: ...
def block_txids(
    block: _Bytes, allow_witness: bool = True
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]: ...
def transaction_txids(
    data: _Bytes, count: int, allow_witness: bool = True
) -> npt.NDArray[np.uint8]: ...
def merkle_root(txids: npt.NDArray[np.uint8]) -> bytes: ...

@final
class TxScanner:
    def __new__(cls, block_size: int | None = None, allow_witness: bool = True) -> TxScanner: ...
    def feed(self, data: _Bytes) -> None: ...
    def finish(self) -> None: ...
    @property
    def offsets(self) -> npt.NDArray[np.uint64]: ...
    @property
    def completed(self) -> int: ...
    @property
    def last_tx_end(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def tx_count(self) -> int | None: ...
    @property
    def header(self) -> bytes | None: ...
    @property
    def done(self) -> bool: ...

@final
class Chunk:
    def __new__(
        cls,
        block_hash: bytes,
        chunk_num: int,
        num_chunks: int,
        start: int,
        data: bytes,
        tx_offsets: npt.NDArray[np.uint64],
        first_tx_index: int,
        witness: list[tuple[int, int]],
    ) -> Chunk: ...
    @property
    def block_hash(self) -> bytes: ...
    @property
    def chunk_num(self) -> int: ...
    @property
    def num_chunks(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def data(self) -> memoryview: ...
    @property
    def tx_offsets(self) -> npt.NDArray[np.uint64]: ...
    @property
    def first_tx_index(self) -> int: ...
    def txids(self) -> npt.NDArray[np.uint8]: ...
    def __reduce__(self) -> tuple[object, tuple[object, ...]]: ...

def release_chunk_buffers() -> int: ...

@final
class BlockChunker:
    def __new__(
        cls, block_size: int, chunk_size: int = ..., allow_witness: bool = True
    ) -> BlockChunker: ...
    def feed(self, data: _Bytes) -> list[Chunk]: ...
    @property
    def num_chunks(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def chunk_size(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def header(self) -> bytes | None: ...
    @property
    def block_hash(self) -> bytes | None: ...
    @property
    def tx_count(self) -> int | None: ...
    @property
    def done(self) -> bool: ...
    @property
    def buffered(self) -> int: ...
