"""The baseline of the tx_offsets scan: a pure-Python preprocessor that
follows the algorithm of the ``preprocessor`` of conduit-db / conduit-p2p
(``conduit_lib/algorithms.py``), written here from its description:

- one module-level ``struct.Struct`` per integer width, read with
  ``unpack_from`` at an int offset into the buffer (no slicing, no copies);
- a ``skip_one_tx`` that adds field widths to the offset: version, for each
  input 36 bytes of outpoint plus the script and the sequence, for each
  output 8 bytes of value plus the script, the lock time;
- a loop that collects start offsets into an ``array('Q')`` until a read
  runs off the end (IndexError / struct.error) or the offset passes the
  buffer, so a partial block yields the offsets of its whole transactions.

The original reads BSV blocks and has no segwit branch; the one addition
here is the BIP-144 marker check and witness skip (two comparisons per
transaction when it is absent), so that the segwit-heavy block is scanned
correctly too. Nothing of the original's text is reused.
"""

from __future__ import annotations

import array
import struct

_H = struct.Struct("<H").unpack_from
_I = struct.Struct("<I").unpack_from
_Q = struct.Struct("<Q").unpack_from


def read_varint(buf: bytes, offset: int) -> tuple[int, int]:
    first = buf[offset]
    if first < 0xFD:
        return first, offset + 1
    if first == 0xFD:
        return _H(buf, offset + 1)[0], offset + 3
    if first == 0xFE:
        return _I(buf, offset + 1)[0], offset + 5
    return _Q(buf, offset + 1)[0], offset + 9


def skip_tx(buf: bytes, offset: int) -> int:
    offset += 4  # version
    n_in, offset = read_varint(buf, offset)
    segwit = False
    if n_in == 0 and buf[offset] == 1:  # BIP-144 marker 0x00, flag 0x01
        segwit = True
        n_in, offset = read_varint(buf, offset + 1)
    for _ in range(n_in):
        offset += 36  # previous txid and output index
        script_len, offset = read_varint(buf, offset)
        offset += script_len + 4  # script, sequence
    n_out, offset = read_varint(buf, offset)
    for _ in range(n_out):
        script_len, offset = read_varint(buf, offset + 8)  # after the value
        offset += script_len
    if segwit:
        for _ in range(n_in):
            items, offset = read_varint(buf, offset)
            for _ in range(items):
                item_len, offset = read_varint(buf, offset)
                offset += item_len
    return offset + 4  # lock time


def preprocess(buf: bytes, offset: int, adjustment: int = 0) -> tuple[array.array[int], int]:
    """Start offsets (plus ``adjustment``) of the whole transactions in
    ``buf`` from ``offset``, and the offset just past the last of them."""
    offsets = array.array("Q", [offset + adjustment])
    last_end = offset
    size = len(buf)
    try:
        while True:
            offset = skip_tx(buf, offset)
            if offset > size:
                break
            last_end = offset + adjustment
            offsets.append(offset + adjustment)
    except (IndexError, struct.error):
        pass
    offsets.pop()  # the start of a transaction that is not (or not yet) there
    return offsets, last_end


def block_tx_offsets(block: bytes) -> array.array[int]:
    """Every transaction's offset in a whole block (after the header and count)."""
    _, first = read_varint(block, 80)
    return preprocess(block, first)[0]
