"""``Msg``: the message of the agent networks, wire-compatible with the Go nodes.

One protobuf (``messages_schema``) carries every direct and topic message:
five strings (``sender``, ``content_type``, ``channel``, ``piggyback``,
``timestamp_net``) and at most one content: stream samples (tensors, PNG
images, text, files), a JSON document, or a batch of statistics. Encoding and
decoding are the protobuf runtime's; this module maps contents to Python
values and bounds what a peer can make us allocate.

Contents, by what ``Msg(content=...)`` takes and ``msg.content`` gives back:

- ``content_type == "stream_sample"``: ``{name: {"data": x, "data_tag": int,
  "data_uuid": str | None}}`` where ``x`` is a numpy array (sent gzipped with
  its dtype and shape, as the Go side's torch tensors), a :class:`PngImage`, a
  ``str`` or a :class:`FileContent`;
- ``content_type == "stats_update"``: a list of :class:`StatUpdate`;
- anything else: a JSON-serialisable value (``json_content``);
- ``None``: no content (``msg.content`` is then ``None``).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import DecodeError

from peerpool.errors import MeshMessageError
from peerpool.mesh.messages_schema import MsgProto

# the Go nodes refuse direct-message payloads over 50 MB (issue 10, framing)
MAX_MESSAGE_SIZE = 50 * 1024 * 1024
# a gzipped tensor may not expand past this (a zip bomb must not take the memory)
MAX_TENSOR_BYTES = 256 * 1024 * 1024

# the torch dtype names the Go world sends, as numpy dtypes (little-endian, as x86/ARM send them)
_DTYPES = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "float16",
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
        "complex64",
        "complex128",
    )
}


@dataclass(frozen=True)
class PngImage:
    """An image sample: the raw PNG bytes (decode them with the image library you use)."""

    data: bytes


@dataclass(frozen=True)
class FileContent:
    """A file sample."""

    content: bytes
    filename: str = ""
    mime_type: str = ""


@dataclass(frozen=True)
class StatUpdate:
    """One statistic: ``value`` is any JSON value (a google.protobuf.Value on the wire)."""

    peer_id: str
    stat_name: str
    timestamp: int  # unix milliseconds
    value: Any = None


class Msg:
    """One message; see the module docstring for the contents."""

    PROFILE = "profile"
    WORLD_APPROVAL = "world_approval"
    AGENT_APPROVAL = "agent_approval"
    PROFILE_REQUEST = "profile_request"
    ADDRESS_UPDATE = "address_update"
    STREAM_SAMPLE = "stream_sample"
    ROLE_SUGGESTION = "role_suggestion"
    INTERACTION = "interaction"
    INTERACTION_STATUS = "interaction_status"
    HSM = "hsm"
    MISC = "misc"
    GET_CV_FROM_ROOT = "get_cv_from_root"
    BADGE_SUGGESTIONS = "badge_suggestions"
    INSPECT_ON = "inspect_on"
    INSPECT_CMD = "inspect_cmd"
    WORLD_AGENTS_LIST = "world_agents_list"
    CONSOLE_AND_BEHAV_STATUS = "console_and_behav_status"
    STATS_UPDATE = "stats_update"
    STATS_REQUEST = "stats_request"
    CONTENT_TYPES = frozenset(
        {
            PROFILE,
            WORLD_APPROVAL,
            AGENT_APPROVAL,
            PROFILE_REQUEST,
            ADDRESS_UPDATE,
            STREAM_SAMPLE,
            ROLE_SUGGESTION,
            INTERACTION,
            INTERACTION_STATUS,
            HSM,
            MISC,
            GET_CV_FROM_ROOT,
            BADGE_SUGGESTIONS,
            INSPECT_ON,
            INSPECT_CMD,
            WORLD_AGENTS_LIST,
            CONSOLE_AND_BEHAV_STATUS,
            STATS_UPDATE,
            STATS_REQUEST,
        }
    )

    __slots__ = ("_decoded", "_proto")

    def __init__(
        self,
        sender: str,
        content: Any = None,
        timestamp_net: str | None = None,
        channel: str | None = None,
        content_type: str = MISC,
        piggyback: str | None = None,
    ) -> None:
        for name, value in (
            ("sender", sender),
            ("content_type", content_type),
            ("channel", channel),
            ("piggyback", piggyback),
            ("timestamp_net", timestamp_net),
        ):
            if value is not None and not isinstance(value, str):
                raise MeshMessageError(f"Msg.{name} must be a str, not {type(value).__name__}")
        proto = MsgProto()
        proto.sender = sender
        proto.content_type = content_type
        proto.channel = channel or ""
        proto.piggyback = piggyback or ""
        proto.timestamp_net = (
            timestamp_net
            if timestamp_net is not None
            else datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        )
        self._proto = proto
        self._decoded: Any = None
        if content is not None:
            _build_content(proto, content_type, content)

    # --- fields --------------------------------------------------------------

    @property
    def sender(self) -> str:
        return str(self._proto.sender)

    @sender.setter
    def sender(self, value: str) -> None:
        self._proto.sender = value

    @property
    def content_type(self) -> str:
        return str(self._proto.content_type)

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._proto.content_type = value

    @property
    def channel(self) -> str:
        return str(self._proto.channel)

    @channel.setter
    def channel(self, value: str) -> None:
        self._proto.channel = value

    @property
    def piggyback(self) -> str:
        return str(self._proto.piggyback)

    @piggyback.setter
    def piggyback(self, value: str) -> None:
        self._proto.piggyback = value

    @property
    def timestamp_net(self) -> str:
        return str(self._proto.timestamp_net)

    @timestamp_net.setter
    def timestamp_net(self, value: str) -> None:
        self._proto.timestamp_net = value

    @property
    def content_kind(self) -> str | None:
        """Which content the message holds: "stream_sample", "json_content", "stats_update" or None."""
        kind = self._proto.WhichOneof("content")
        return str(kind) if kind is not None else None

    @property
    def content(self) -> Any:
        """The content as Python values, decoded on first access (MeshMessageError if it cannot be)."""
        if self._decoded is None:
            self._decoded = _parse_content(self._proto)
        return self._decoded

    @property
    def proto(self) -> Any:
        """The underlying protobuf message (for code that speaks protobuf directly)."""
        return self._proto

    # --- bytes -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return bytes(self._proto.SerializeToString())

    @classmethod
    def from_bytes(cls, data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Msg:
        """Decode; a message over ``max_size`` or that is not a ``Msg`` is a MeshMessageError."""
        if len(data) > max_size:
            raise MeshMessageError(
                f"message of {len(data)} bytes is over the {max_size}-byte limit"
            )
        proto = MsgProto()
        try:
            proto.ParseFromString(bytes(data))
        except DecodeError as exc:
            raise MeshMessageError(f"not a Msg protobuf: {exc}") from None
        msg = cls.__new__(cls)
        msg._proto = proto
        msg._decoded = None
        return msg

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and self._proto == other._proto

    __hash__ = None  # type: ignore[assignment]  # mutable, like the protobuf it wraps

    def __repr__(self) -> str:
        return (
            f"Msg(sender={self.sender[:16]!r}, content_type={self.content_type!r}, "
            f"channel={self.channel!r}, content={self.content_kind})"
        )


# --- content builders ------------------------------------------------------------


def _build_content(proto: Any, content_type: str, content: Any) -> None:
    if content_type == Msg.STREAM_SAMPLE:
        _build_samples(proto.stream_sample, content)
    elif content_type == Msg.STATS_UPDATE and isinstance(content, (list, tuple)):
        _build_stats(proto.stats_update, content)
    else:
        try:
            proto.json_content = json.dumps(content)
        except (TypeError, ValueError) as exc:
            raise MeshMessageError(f"content is not JSON-serialisable: {exc}") from None


def _build_samples(pb: Any, samples: Any) -> None:
    if not isinstance(samples, dict):
        raise MeshMessageError("stream_sample content must be a dict of name -> sample dict")
    for name, sample in samples.items():
        if not isinstance(name, str) or not isinstance(sample, dict):
            raise MeshMessageError(f"stream sample {name!r} must be a dict under a str name")
        out = pb.samples[name]
        out.data_tag = int(sample.get("data_tag", -1))
        uuid = sample.get("data_uuid")
        if uuid is not None:
            out.data_uuid = str(uuid)
        data = sample.get("data")
        if isinstance(data, np.ndarray):
            dtype = data.dtype.name
            if dtype not in _DTYPES:
                raise MeshMessageError(f"tensor dtype {dtype} has no counterpart on the Go side")
            raw = np.ascontiguousarray(data, dtype=_DTYPES[dtype]).tobytes()
            out.data.tensor_data.data = gzip.compress(raw, compresslevel=6, mtime=0)
            out.data.tensor_data.dtype = dtype
            out.data.tensor_data.shape.extend(int(d) for d in data.shape)
        elif isinstance(data, PngImage):
            out.data.image_data.data = data.data
        elif isinstance(data, str):
            out.data.text_data.data = data
        elif isinstance(data, FileContent):
            out.data.file_data.content = data.content
            out.data.file_data.filename = data.filename
            out.data.file_data.mime_type = data.mime_type
        elif data is not None:
            raise MeshMessageError(
                f"stream sample {name!r}: data must be an ndarray, PngImage, str or FileContent"
            )


def _build_stats(pb: Any, updates: list[Any] | tuple[Any, ...]) -> None:
    for update in updates:
        if not isinstance(update, StatUpdate):
            raise MeshMessageError("stats_update content must be a list of StatUpdate")
        out = pb.updates.add(
            peer_id=update.peer_id, stat_name=update.stat_name, timestamp=update.timestamp
        )
        try:
            json_format.ParseDict(update.value, out.value)
        except json_format.ParseError as exc:
            raise MeshMessageError(f"stat {update.stat_name!r}: value is not JSON: {exc}") from None


# --- content parsers -------------------------------------------------------------


def _parse_content(proto: Any) -> Any:
    kind = proto.WhichOneof("content")
    if kind == "json_content":
        try:
            return json.loads(proto.json_content)
        except ValueError as exc:
            raise MeshMessageError(f"json_content is not JSON: {exc}") from None
    if kind == "stream_sample":
        return {
            name: {
                "data": _parse_sample_data(name, sample.data),
                "data_tag": int(sample.data_tag),
                "data_uuid": str(sample.data_uuid) if sample.HasField("data_uuid") else None,
            }
            for name, sample in proto.stream_sample.samples.items()
        }
    if kind == "stats_update":
        return [
            StatUpdate(
                peer_id=str(u.peer_id),
                stat_name=str(u.stat_name),
                timestamp=int(u.timestamp),
                value=_value_to_python(u) if u.HasField("value") else None,
            )
            for u in proto.stats_update.updates
        ]
    return None


def _value_to_python(update: Any) -> Any:
    value: struct_pb2.Value = update.value
    return json_format.MessageToDict(value)


def _parse_sample_data(name: str, data: Any) -> Any:
    which = data.WhichOneof("data_payload")
    if which == "tensor_data":
        return _parse_tensor(name, data.tensor_data)
    if which == "image_data":
        return PngImage(bytes(data.image_data.data))
    if which == "text_data":
        return str(data.text_data.data)
    if which == "file_data":
        f = data.file_data
        return FileContent(bytes(f.content), str(f.filename), str(f.mime_type))
    return None


def _parse_tensor(name: str, tensor: Any) -> np.ndarray:
    dtype = _DTYPES.get(str(tensor.dtype))
    if dtype is None:
        raise MeshMessageError(f"stream sample {name!r}: unsupported tensor dtype {tensor.dtype!r}")
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise MeshMessageError(f"stream sample {name!r}: negative dimension in shape {shape}")
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_TENSOR_BYTES:
        raise MeshMessageError(
            f"stream sample {name!r}: tensor of {expected} bytes is over {MAX_TENSOR_BYTES}"
        )
    # decompress at most one byte more than the shape needs, so a bomb stops early
    inflater = zlib.decompressobj(wbits=31)
    try:
        raw = inflater.decompress(bytes(tensor.data), expected + 1)
    except zlib.error as exc:
        raise MeshMessageError(f"stream sample {name!r}: tensor data is not gzip: {exc}") from None
    if len(raw) != expected or not inflater.eof:
        raise MeshMessageError(
            f"stream sample {name!r}: tensor data does not hold shape {shape} of {dtype.name}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
