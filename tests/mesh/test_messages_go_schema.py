"""Our Msg schema against the Go nodes' schema, compiled by protoc (grpcio-tools).

Three checks: every message, field number, type, label, oneof and packing of
our descriptor equals the Go schema's (names aside: on the wire only numbers
and types count); reference bytes built by the protobuf runtime from the Go
schema decode as our Msg with every value in place; and our bytes decode
under the Go schema.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

from peerpool.mesh.messages import FileContent, Msg, PngImage, StatUpdate
from peerpool.mesh.messages_schema import build_file_descriptor

DATA = Path(__file__).parent / "data"
F = descriptor_pb2.FieldDescriptorProto


@pytest.fixture(scope="module")
def go_file(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorProto:
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"  # protoc's well-known types
    out = tmp_path_factory.mktemp("protoc") / "go.desc"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{DATA}",
            f"-I{include}",
            f"--descriptor_set_out={out}",
            "go_message.proto",
        ],
        check=True,
    )
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (fd,) = fds.file
    return fd


@pytest.fixture(scope="module")
def go_classes(go_file: descriptor_pb2.FileDescriptorProto) -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    struct_fd = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(struct_fd)
    pool.Add(struct_fd)
    pool.Add(go_file)
    return {
        m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"p2p.{m.name}"))
        for m in go_file.message_type
    }


def _shape(msg: descriptor_pb2.DescriptorProto, package: str) -> dict[int, tuple[Any, ...]]:
    """Field number -> (type, label, referenced type without package, oneof name, packed, optional)."""
    out = {}
    for f in msg.field:
        ref = f.type_name.removeprefix(f".{package}.") if f.type_name else ""
        oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        if f.proto3_optional:
            oneof = "<synthetic>"
        packed = f.options.packed if f.options.HasField("packed") else None
        out[f.number] = (f.type, f.label, ref, oneof, packed, f.proto3_optional)
    return out


def test_schema_matches_field_by_field(go_file: descriptor_pb2.FileDescriptorProto) -> None:
    ours = build_file_descriptor()
    rename = {"Msg": "Message"}
    ours_by_name = {rename.get(m.name, m.name): m for m in ours.message_type}
    go_by_name = {m.name: m for m in go_file.message_type}
    assert ours_by_name.keys() == go_by_name.keys()
    for name, go_msg in go_by_name.items():
        mine = ours_by_name[name]
        go_shape = _shape(go_msg, "p2p")
        my_shape = {
            n: (t, lab, rename.get(ref, ref), oneof, packed, opt)
            for n, (t, lab, ref, oneof, packed, opt) in _shape(mine, "peerpool.mesh").items()
        }
        assert my_shape == go_shape, name
        assert [f.name for f in mine.field] == [f.name for f in go_msg.field], name
        go_nested = {n.name: _shape(n, "p2p") for n in go_msg.nested_type}
        my_nested = {n.name: _shape(n, "peerpool.mesh") for n in mine.nested_type}
        assert my_nested.keys() == go_nested.keys(), name
        for nested in go_nested:
            rows = {
                k: (*v[:2], rename.get(v[2], v[2]), *v[3:]) for k, v in my_nested[nested].items()
            }
            assert rows == go_nested[nested], f"{name}.{nested}"
    # the numbers, spelled out once more so a change to both files is caught too
    msg = go_by_name["Message"]
    assert {f.name: (f.number, f.type) for f in msg.field} == {
        "sender": (1, F.TYPE_STRING),
        "content_type": (2, F.TYPE_STRING),
        "channel": (3, F.TYPE_STRING),
        "piggyback": (4, F.TYPE_STRING),
        "timestamp_net": (5, F.TYPE_STRING),
        "stream_sample": (6, F.TYPE_MESSAGE),
        "json_content": (7, F.TYPE_STRING),
        "stats_update": (8, F.TYPE_MESSAGE),
    }


def _go_reference(go: dict[str, Any]) -> list[tuple[bytes, dict[str, Any]]]:
    """Bytes built from the Go schema for each oneof, with what they must decode to."""
    cases = []
    m = go["Message"](
        sender="12D3KooWgo", content_type="profile", channel="c", piggyback="t1", timestamp_net="ts"
    )
    m.json_content = '{"name": "go-agent", "n": 3}'
    cases.append((m.SerializeToString(), {"content": {"name": "go-agent", "n": 3}}))

    m = go["Message"](sender="12D3KooWgo", content_type="stream_sample")
    raw = np.arange(6, dtype="<f4").tobytes()
    s = m.stream_sample.samples["t"]
    s.data_tag = 4
    s.data_uuid = "uuid-go"
    s.data.tensor_data.data = gzip.compress(raw)
    s.data.tensor_data.dtype = "float32"
    s.data.tensor_data.shape.extend([2, 3])
    m.stream_sample.samples["i"].data.image_data.data = b"\x89PNG"
    m.stream_sample.samples["x"].data.text_data.data = "text"
    f = m.stream_sample.samples["f"].data.file_data
    f.content, f.filename, f.mime_type = b"abc", "a.bin", "application/octet-stream"
    cases.append((m.SerializeToString(), {"stream": True}))

    m = go["Message"](sender="12D3KooWgo", content_type="stats_update")
    u = m.stats_update.updates.add(peer_id="p", stat_name="reward", timestamp=1_700_000_000_000)
    u.value.number_value = 2.5
    u = m.stats_update.updates.add(peer_id="q", stat_name="tags", timestamp=1)
    u.value.list_value.values.add().string_value = "a"
    cases.append((m.SerializeToString(), {"stats": True}))
    return cases


def test_go_bytes_decode_as_msg(go_classes: dict[str, Any]) -> None:
    (json_bytes, json_expect), (stream_bytes, _), (stats_bytes, _) = _go_reference(go_classes)
    msg = Msg.from_bytes(json_bytes)
    assert (msg.sender, msg.content_type, msg.channel, msg.piggyback, msg.timestamp_net) == (
        "12D3KooWgo",
        "profile",
        "c",
        "t1",
        "ts",
    )
    assert msg.content == json_expect["content"]

    samples = Msg.from_bytes(stream_bytes).content
    np.testing.assert_array_equal(samples["t"]["data"], np.arange(6, dtype="f4").reshape(2, 3))
    assert (samples["t"]["data_tag"], samples["t"]["data_uuid"]) == (4, "uuid-go")
    assert samples["i"]["data"] == PngImage(b"\x89PNG")
    assert samples["x"]["data"] == "text" and samples["x"]["data_uuid"] is None
    assert samples["f"]["data"] == FileContent(b"abc", "a.bin", "application/octet-stream")

    assert Msg.from_bytes(stats_bytes).content == [
        StatUpdate("p", "reward", 1_700_000_000_000, 2.5),
        StatUpdate("q", "tags", 1, ["a"]),
    ]


def test_our_bytes_decode_under_go_schema(go_classes: dict[str, Any]) -> None:
    go_msg = go_classes["Message"]
    ours = Msg(
        "12D3KooWus",
        content={"t": {"data": np.ones((2, 2), dtype="int64"), "data_tag": 1, "data_uuid": "u"}},
        content_type=Msg.STREAM_SAMPLE,
        channel="ch",
        piggyback="tok0",
    )
    decoded = go_msg.FromString(ours.to_bytes())
    assert decoded.WhichOneof("content") == "stream_sample"
    t = decoded.stream_sample.samples["t"]
    assert t.HasField("data_uuid") and t.data_uuid == "u"
    assert list(t.data.tensor_data.shape) == [2, 2] and t.data.tensor_data.dtype == "int64"
    assert gzip.decompress(t.data.tensor_data.data) == np.ones((2, 2), dtype="<i8").tobytes()
    # byte-for-byte: the Go schema re-encodes our message to the same bytes
    assert decoded.SerializeToString(deterministic=True) == ours.proto.SerializeToString(
        deterministic=True
    )

    stats = Msg(
        "12D3KooWus", content=[StatUpdate("p", "s", 9, {"a": 1})], content_type="stats_update"
    )
    d = go_msg.FromString(stats.to_bytes())
    assert d.stats_update.updates[0].value.struct_value.fields["a"].number_value == 1
    j = go_msg.FromString(Msg("12D3KooWus", content=[1, 2], content_type="misc").to_bytes())
    assert j.WhichOneof("content") == "json_content" and j.json_content == "[1, 2]"
