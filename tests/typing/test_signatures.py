"""`inspect.signature` of the Rust classes and functions shows their real
defaults (pyo3 writes `...` for a default that is not a literal unless the
binding gives a text_signature)."""

from __future__ import annotations

import inspect

import peerpool._core as core
from peerpool.bitcoin import DEFAULT_CHUNK_SIZE, BlockChunker


def test_block_chunker_signature() -> None:
    signature = inspect.signature(BlockChunker)
    assert str(signature) == f"(block_size, chunk_size={DEFAULT_CHUNK_SIZE}, allow_witness=True)"


def test_no_signature_of_the_extension_shows_an_ellipsis() -> None:
    shown = {}
    for name in dir(core):
        obj = getattr(core, name)
        if callable(obj) and not name.startswith("_"):
            try:
                shown[name] = str(inspect.signature(obj))
            except (TypeError, ValueError):
                continue  # no text signature at all (an exception class, say)
    assert "read_compact_size" in shown and "MessageDecoder" in shown
    assert not {n: s for n, s in shown.items() if "Ellipsis" in s or "..." in s}
