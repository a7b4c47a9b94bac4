"""The Go agent nodes' direct-message framing on /unaiverse/chat/1.0.0, for the py-libp2p peer.

Written independently of peerpool's own codec on purpose: the py-libp2p peer is the
third-party side of the interop tests, so it must not share our code (a bug shared by
both ends would pass unnoticed).

A frame (issue 10, measured on the Go nodes): u32 big-endian total length
(= 1 + len(channel) + len(payload)), u8 channel length, the channel (<= 255 bytes,
UTF-8), the payload (<= 50 MiB).
"""

from __future__ import annotations

import struct

PROTOCOL = "/unaiverse/chat/1.0.0"
MAX_CHANNEL = 255  # the u8 length byte
MAX_PAYLOAD = 50 * 1024 * 1024  # the Go nodes' limit (issue 10)


class ChatFrameError(ValueError):
    """A peer sent a frame that breaks the framing rules."""


def encode_frame(channel: str, payload: bytes) -> bytes:
    ch = channel.encode()
    if len(ch) > MAX_CHANNEL:
        raise ChatFrameError(f"channel is {len(ch)} bytes, at most {MAX_CHANNEL}")
    if len(payload) > MAX_PAYLOAD:
        raise ChatFrameError(f"payload is {len(payload)} bytes, at most {MAX_PAYLOAD}")
    return struct.pack(">IB", 1 + len(ch) + len(payload), len(ch)) + ch + payload


def encode_raw_frame(total_len: int, channel_len: int, body: bytes) -> bytes:
    """A frame with arbitrary header fields: lets a test send deliberately bad frames."""
    return struct.pack(">IB", total_len, channel_len) + body


class ChatFrameDecoder:
    """Incremental decoder: feed() bytes, get back the complete (channel, payload) frames."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._max_total = 1 + MAX_CHANNEL + max_payload

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self._buf += data
        out: list[tuple[str, bytes]] = []
        while len(self._buf) >= 5:
            total, ch_len = struct.unpack_from(">IB", self._buf)
            # limits are checked on the header, before waiting for (and buffering) the body
            if total < 1 or total > self._max_total:
                raise ChatFrameError(f"frame length {total} out of range")
            if ch_len > total - 1:
                raise ChatFrameError(f"channel length {ch_len} exceeds frame length {total}")
            if len(self._buf) < 4 + total:
                break
            try:
                channel = bytes(self._buf[5 : 5 + ch_len]).decode()
            except UnicodeDecodeError as exc:
                raise ChatFrameError("channel is not UTF-8") from exc
            payload = bytes(self._buf[5 + ch_len : 4 + total])
            del self._buf[: 4 + total]
            out.append((channel, payload))
        return out
