"""Integer arguments of the kernels outside 0..2**64-1 are a PeerpoolError
(InputError), not Python's OverflowError; a non-integer stays a TypeError."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerpool._core import read_compact_size, transaction_txids, write_compact_size
from peerpool.bitcoin import BlockChunker, MessageDecoder, TxScanner
from peerpool.errors import InputError, PeerpoolError

MAGIC = bytes.fromhex("dab5bffa")

CALLS: dict[str, Callable[[int], object]] = {
    "BlockChunker block_size": lambda n: BlockChunker(n),
    "BlockChunker chunk_size": lambda n: BlockChunker(1000, n),
    "TxScanner block_size": lambda n: TxScanner(n),
    "MessageDecoder max_payload": lambda n: MessageDecoder(MAGIC, n),
    "MessageDecoder block_chunk_size": lambda n: MessageDecoder(MAGIC, block_chunk_size=n),
    "transaction_txids count": lambda n: transaction_txids(b"", n),
    "write_compact_size value": lambda n: write_compact_size(n),
    "read_compact_size limit": lambda n: read_compact_size(b"\x01", 0, n),
    "read_compact_size offset": lambda n: read_compact_size(b"\x01", n),
}


@pytest.mark.parametrize("value", [-1, 2**64, -(2**70)])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_out_of_range_is_an_input_error(call: str, value: int) -> None:
    with pytest.raises(InputError, match="out of range") as info:
        CALLS[call](value)
    assert isinstance(info.value, PeerpoolError)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_non_integer_is_a_type_error(call: str) -> None:
    with pytest.raises(TypeError):
        CALLS[call]("12")  # type: ignore[arg-type]


def test_none_still_means_no_chunking_or_unknown_size() -> None:
    assert TxScanner(None).tx_count is None
    assert MessageDecoder(MAGIC, block_chunk_size=None).feed(b"") == []
