"""Pure-Python Bitcoin kernels: the oracle in tests and the baseline in benches.

Written from the protocol's definitions (Bitcoin Core's serialize.h,
protocol.h, primitives/transaction.h, arith_uint256.cpp, pow.cpp and BSV's
extended message header) with hashlib and Python ints only. Obvious rather
than fast; nothing here is shared with the Rust kernels it checks.

Every rejection is a :class:`Rejected` with a ``kind`` and the ``offset`` in
the input where it happened, so tests can compare verdicts with the kernels.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

MAX_U64 = 2**64 - 1
HEADER_LEN = 80


class Rejected(ValueError):
    """The reference refuses the input: ``kind`` says why, ``offset`` where."""

    def __init__(self, kind: str, offset: int, detail: str = "") -> None:
        super().__init__(f"{kind} at {offset}: {detail}")
        self.kind = kind
        self.offset = offset


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# --- CompactSize ---------------------------------------------------------------

# marker byte -> (width of the integer after it, smallest value it may encode)
_WIDE = {0xFD: (2, 0xFD), 0xFE: (4, 0x1_0000), 0xFF: (8, 0x1_0000_0000)}


def write_compact_size(value: int) -> bytes:
    if not 0 <= value <= MAX_U64:
        raise ValueError(f"{value} is not a u64")
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "little")
    if value <= 0xFFFF_FFFF:
        return b"\xfe" + value.to_bytes(4, "little")
    return b"\xff" + value.to_bytes(8, "little")


def read_compact_size(data: bytes, offset: int = 0, limit: int = MAX_U64) -> tuple[int, int]:
    """(value, encoded length) of the CompactSize at ``offset``."""
    if offset >= len(data):
        raise Rejected("truncated", offset)
    first = data[offset]
    if first < 0xFD:
        value, size = first, 1
    else:
        width, smallest = _WIDE[first]
        if offset + 1 + width > len(data):
            raise Rejected("truncated", offset)
        value = int.from_bytes(data[offset + 1 : offset + 1 + width], "little")
        if value < smallest:
            raise Rejected("non-minimal", offset)
        size = 1 + width
    if value > limit:
        raise Rejected("too-large", offset)
    return value, size


# --- message framing -------------------------------------------------------------

EXTMSG = b"extmsg" + bytes(6)
EXT_MARKER = 0xFFFF_FFFF


def checksum(payload: bytes) -> bytes:
    return sha256d(payload)[:4]


def parse_command(raw: bytes) -> str | None:
    """The command in a 12-byte field, or None if it is not printable ASCII then NULs."""
    name = raw.split(b"\0", 1)[0]
    padding = raw[len(name) :]
    if not name or any(not 0x20 <= b <= 0x7E for b in name) or padding.strip(b"\0"):
        return None
    return name.decode("ascii")


def command_field(command: str) -> bytes:
    raw = command.encode("utf-8")
    if len(raw) > 12 or parse_command(raw.ljust(12, b"\0")) is None:
        raise Rejected("bad-command", 0, repr(command))
    return raw.ljust(12, b"\0")


def encode_header(magic: bytes, command: str, length: int, checksum: bytes = bytes(4)) -> bytes:
    if length >= EXT_MARKER:
        return (
            magic
            + EXTMSG
            + struct.pack("<I", EXT_MARKER)
            + bytes(4)
            + command_field(command)
            + struct.pack("<Q", length)
        )
    return magic + command_field(command) + struct.pack("<I", length) + checksum


def encode_message(magic: bytes, command: str, payload: bytes) -> bytes:
    if len(payload) >= EXT_MARKER:
        return encode_header(magic, command, len(payload)) + payload
    return encode_header(magic, command, len(payload), checksum(payload)) + payload


# Events of the reference decoder, as tuples:
# ("message", command, payload), ("start", command, length), ("piece", data),
# ("end", command, length).
Event = tuple


@dataclass
class _Payload:
    command: str
    length: int
    expected: bytes | None  # checksum from the header; None for extended headers
    large: bool
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    received: int = 0
    body: bytearray = field(default_factory=bytearray)


class MessageDecoder:
    """Push decoder: keeps unconsumed header bytes in a buffer, the payload in
    another (or hands it on in pieces when it is large)."""

    def __init__(self, magic: bytes, max_payload: int, large_threshold: int) -> None:
        self.magic = magic
        self.max_payload = max_payload
        self.large_threshold = large_threshold
        self.header = bytearray()
        self.payload: _Payload | None = None
        self.consumed = 0
        self.message_start = 0
        self.failed: Rejected | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self.failed:
            raise self.failed
        events: list[Event] = []
        data = bytes(data)
        try:
            while data:
                used = self._step(data, events)
                self.consumed += used
                data = data[used:]
        except Rejected as exc:
            self.failed = exc
            raise
        return events

    def _step(self, data: bytes, events: list[Event]) -> int:
        if self.payload is not None:
            p = self.payload
            piece = data[: p.length - p.received]
            p.received += len(piece)
            p.hasher.update(piece)
            if p.large:
                events.append(("piece", piece))
            else:
                p.body += piece
            if p.received == p.length:
                self._finish(events)
            return len(piece)
        if not self.header:
            self.message_start = self.consumed
        need = 44 if len(self.header) >= 24 and self.header[4:16] == EXTMSG else 24
        take = data[: need - len(self.header)]
        before = len(self.header)
        self.header += take
        if before < 4 <= len(self.header) and self.header[:4] != self.magic:
            raise Rejected("bad-magic", self.message_start)
        if len(self.header) == 24 and self.header[4:16] == EXTMSG:
            length, sum_field = struct.unpack_from("<I4s", self.header, 16)
            if length != EXT_MARKER or sum_field != bytes(4):
                raise Rejected("bad-extended", self.message_start)
        elif len(self.header) == need:
            self._begin(events)
        return len(take)

    def _begin(self, events: list[Event]) -> None:
        h = bytes(self.header)
        self.header = bytearray()
        if len(h) == 44:
            command = parse_command(h[24:36])
            (length,) = struct.unpack_from("<Q", h, 36)
            expected = None
        else:
            command = parse_command(h[4:16])
            length, expected = struct.unpack_from("<I4s", h, 16)
        if command is None:
            raise Rejected("bad-command", self.message_start)
        if length > self.max_payload:
            raise Rejected("too-large", self.message_start)
        large = length >= self.large_threshold
        if large:
            events.append(("start", command, length))
        self.payload = _Payload(command, length, expected, large)
        if length == 0:
            self._finish(events)

    def _finish(self, events: list[Event]) -> None:
        p = self.payload
        assert p is not None
        self.payload = None
        digest = hashlib.sha256(p.hasher.digest()).digest()
        if p.expected is not None and digest[:4] != p.expected:
            raise Rejected("bad-checksum", self.message_start)
        if p.large:
            events.append(("end", p.command, p.length))
        else:
            events.append(("message", p.command, bytes(p.body)))


def merge_pieces(events: list[Event]) -> list[Event]:
    """Join consecutive pieces: how a payload is split into pieces is not part
    of the decoder's contract, their concatenation is."""
    out: list[Event] = []
    for e in events:
        if e[0] == "piece" and out and out[-1][0] == "piece":
            out[-1] = ("piece", out[-1][1] + e[1])
        else:
            out.append(e)
    return out


# --- transactions and blocks -------------------------------------------------------


@dataclass(frozen=True)
class TxSpan:
    """Where one transaction lies in a block: [start, end), and where its
    witness begins (segwit only) so its txid can leave the witness out."""

    start: int
    end: int
    witness_start: int | None = None


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise Rejected("truncated", len(self.data))
        self.pos += n

    def byte(self) -> int:
        self.skip(1)
        return self.data[self.pos - 1]

    def compact(self) -> int:
        try:
            value, size = read_compact_size(self.data, self.pos)
        except Rejected as exc:
            kind = "truncated" if exc.kind == "truncated" else "malformed"
            raise Rejected(kind, len(self.data) if kind == "truncated" else self.pos) from None
        self.pos += size
        return value


def parse_tx(data: bytes, pos: int, allow_witness: bool = True) -> TxSpan:
    """The transaction that starts at ``pos``, laid out as Core's
    UnserializeTransaction reads it."""
    r = _Reader(data, pos)
    r.skip(4)  # version
    n_inputs = r.compact()
    segwit = False
    if n_inputs == 0 and allow_witness:
        flag = r.byte()  # after an empty input vector: the segwit flag
        if flag == 0:  # no inputs, no outputs: the byte was the output count
            r.skip(4)
            return TxSpan(pos, r.pos)
        if flag != 1:
            raise Rejected("malformed", r.pos - 1, f"segwit flag {flag}")
        segwit = True
        n_inputs = r.compact()
    for _ in range(n_inputs):
        r.skip(36)  # outpoint
        r.skip(r.compact())  # script
        r.skip(4)  # sequence
    for _ in range(r.compact()):
        r.skip(8)  # value
        r.skip(r.compact())  # script
    witness_start = None
    if segwit:
        witness_start = r.pos
        for _ in range(n_inputs):
            for _ in range(r.compact()):
                r.skip(r.compact())
    r.skip(4)  # lock time
    return TxSpan(pos, r.pos, witness_start)


def scan_block(block: bytes, allow_witness: bool = True) -> list[TxSpan]:
    """Every transaction of a whole block."""
    block = bytes(block)
    r = _Reader(block, 0)
    r.skip(HEADER_LEN)
    count = r.compact()
    if count == 0:
        raise Rejected("malformed", r.pos, "no transactions")
    if count > (len(block) - r.pos) // 10:  # a transaction takes at least 10 bytes
        raise Rejected("malformed", r.pos, f"{count} transactions cannot fit")
    spans: list[TxSpan] = []
    pos = r.pos
    while len(spans) < count:
        if pos == len(block) and spans:
            raise Rejected("count", pos, f"{len(spans)} of {count} transactions")
        span = parse_tx(block, pos, allow_witness)
        spans.append(span)
        pos = span.end
    if pos != len(block):
        raise Rejected("count", pos, "bytes after the last transaction")
    return spans


def tx_offsets(block: bytes, allow_witness: bool = True) -> list[int]:
    return [s.start for s in scan_block(block, allow_witness)]


def txid_of(data: bytes, span: TxSpan) -> bytes:
    """Double SHA-256 of the transaction without marker, flag and witness."""
    tx = data[span.start : span.end]
    if span.witness_start is None:
        return sha256d(tx)
    ws = span.witness_start - span.start
    return sha256d(tx[:4] + tx[6:ws] + tx[-4:])


def txid(tx: bytes, allow_witness: bool = True) -> bytes:
    return txid_of(tx, parse_tx(tx, 0, allow_witness))


def merkle_root(txids: list[bytes]) -> bytes:
    level = list(txids)
    if not level:
        raise ValueError("no txids")
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def block_merkle_root(block: bytes, allow_witness: bool = True) -> bytes:
    """The merkle root rebuilt from the transactions this reference finds."""
    return merkle_root([txid_of(block, s) for s in scan_block(block, allow_witness)])


# --- chunk splitter ----------------------------------------------------------------


@dataclass
class RefChunk:
    chunk_num: int
    num_chunks: int
    first_tx_index: int
    spans: list[TxSpan]

    @property
    def tx_offsets(self) -> list[int]:
        return [s.start for s in self.spans]

    @property
    def byte_range(self) -> tuple[int, int] | None:
        return (self.spans[0].start, self.spans[-1].end) if self.spans else None


def chunk_rule(spans: list[TxSpan], block_size: int, chunk_size: int) -> list[RefChunk]:
    """The issue's rule, literally: ceil(S / C) chunks; chunk k holds the
    transactions not in an earlier chunk that end within the first (k+1)*C
    bytes; the last chunk takes the rest, up to the block's end."""
    num_chunks = -(-block_size // chunk_size)
    chunks, taken = [], 0
    for k in range(num_chunks):
        cut = block_size if k == num_chunks - 1 else (k + 1) * chunk_size
        mine = [s for s in spans[taken:] if s.end <= cut]
        chunks.append(RefChunk(k, num_chunks, taken, mine))
        taken += len(mine)
    return chunks


class ChunkSplitter:
    """The rule applied to a block fed in pieces: the streaming baseline.

    Holds the bytes from the first transaction not yet handed out; parses each
    transaction once it is complete (a truncated parse is retried when more
    bytes arrive); cuts chunk k when byte (k+1)*C has arrived.
    """

    def __init__(self, block_size: int, chunk_size: int, allow_witness: bool = True) -> None:
        self.block_size = block_size
        self.chunk_size = chunk_size
        self.allow_witness = allow_witness
        self.num_chunks = -(-block_size // chunk_size)
        self.buf = bytearray()
        self.buf_start = 0  # block offset of buf[0]
        self.received = 0
        self.next_tx = -1  # block offset of the next transaction to parse; -1 before the count
        self.tx_count = 0
        self.parsed: list[TxSpan] = []  # complete, not yet handed out
        self.emitted = 0
        self.next_chunk = 0

    def feed(self, data: bytes) -> list[tuple[RefChunk, bytes]]:
        if self.received + len(data) > self.block_size:
            raise Rejected("count", self.block_size, "more bytes than the block")
        self.buf += data
        self.received += len(data)
        self._parse()
        out = []
        while self.next_chunk < self.num_chunks:
            k = self.next_chunk
            last = k == self.num_chunks - 1
            cut = self.block_size if last else (k + 1) * self.chunk_size
            if self.received < cut:
                break
            mine = [s for s in self.parsed if s.end <= cut]
            if last and self.emitted + len(mine) != self.tx_count:
                raise Rejected("count", self.received, "block ended early")
            del self.parsed[: len(mine)]
            data_out = b""
            if mine:
                lo, hi = mine[0].start - self.buf_start, mine[-1].end - self.buf_start
                data_out = bytes(self.buf[lo:hi])
                del self.buf[:hi]
                self.buf_start = mine[-1].end
            out.append((RefChunk(k, self.num_chunks, self.emitted, mine), data_out))
            self.emitted += len(mine)
            self.next_chunk += 1
        return out

    def _parse(self) -> None:
        if self.next_tx < 0:
            if self.received < HEADER_LEN + 1:
                return
            try:
                self.tx_count, size = read_compact_size(
                    bytes(self.buf[HEADER_LEN : HEADER_LEN + 9])
                )
            except Rejected as exc:
                if exc.kind == "truncated":
                    return
                raise
            self.next_tx = HEADER_LEN + size
            del self.buf[: self.next_tx]
            self.buf_start = self.next_tx
        # a view, not a copy: the buffer holds up to a whole chunk
        with memoryview(self.buf) as view:
            while self.emitted + len(self.parsed) < self.tx_count:
                try:
                    span = parse_tx(view, self.next_tx - self.buf_start, self.allow_witness)  # type: ignore[arg-type]
                except Rejected as exc:
                    if exc.kind == "truncated":
                        return
                    raise
                b = self.buf_start
                ws = None if span.witness_start is None else span.witness_start + b
                self.parsed.append(TxSpan(span.start + b, span.end + b, ws))
                self.next_tx = span.end + b


# --- headers -------------------------------------------------------------------------


def hash_header(header: bytes) -> bytes:
    if len(header) != HEADER_LEN:
        raise Rejected("bad-length", 0)
    return sha256d(header)


def set_compact(bits: int) -> tuple[int, bool, bool]:
    """Core's arith_uint256::SetCompact: (target, negative, overflow)."""
    size = bits >> 24
    word = bits & 0x007F_FFFF
    if size <= 3:
        word >>= 8 * (3 - size)
        target = word
    else:
        target = (word << (8 * (size - 3))) % 2**256
    negative = word != 0 and bits & 0x0080_0000 != 0
    overflow = word != 0 and (
        size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)
    )
    return target, negative, overflow


def get_compact(target: int) -> int:
    """Core's arith_uint256::GetCompact (non-negative)."""
    size = (target.bit_length() + 7) // 8
    compact = target << (8 * (3 - size)) if size <= 3 else target >> (8 * (size - 3))
    if compact & 0x0080_0000:  # the sign bit: move the mantissa down a byte
        compact >>= 8
        size += 1
    return compact | (size << 24)


def bits_problem(bits: int, pow_limit: int | None = None) -> str | None:
    """Why Core's CheckProofOfWork refuses these bits before looking at the
    hash, as the kernel's reason code; None if it does not."""
    target, negative, overflow = set_compact(bits)
    if negative:
        return "bits-negative"
    if overflow:
        return "bits-overflow"
    if target == 0:
        return "bits-zero"
    if pow_limit is not None and target > pow_limit:
        return "bits-above-pow-limit"
    return None


def check_pow(header: bytes, pow_limit: int | None = None) -> str | None:
    """None if the header's hash meets its target, else the reason."""
    (bits,) = struct.unpack_from("<I", header, 72)
    problem = bits_problem(bits, pow_limit)
    if problem:
        return problem
    if int.from_bytes(hash_header(header), "little") > set_compact(bits)[0]:
        return "high-hash"
    return None


def check_headers(
    buf: bytes, prev_hash: bytes | None = None, pow_limit: int | None = None
) -> tuple[list[bytes], int | None, str | None]:
    """(hashes, index of the first failure, reason) for consecutive headers."""
    if len(buf) % HEADER_LEN:
        raise Rejected("bad-length", len(buf))
    headers = [bytes(buf[i : i + HEADER_LEN]) for i in range(0, len(buf), HEADER_LEN)]
    hashes = [sha256d(h) for h in headers]
    expected = prev_hash
    for i, header in enumerate(headers):
        if expected is not None and header[4:36] != expected:
            return hashes, i, "prev-blk-not-found"
        problem = check_pow(header, pow_limit)
        if problem:
            return hashes, i, problem
        expected = hashes[i]
    return hashes, None, None
