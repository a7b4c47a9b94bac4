"""Msg round-trips through bytes for every content, and bad bytes or content give typed errors."""

from __future__ import annotations

import contextlib
import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.errors import InputError, MeshMessageError
from peerpool.mesh.messages import FileContent, Msg, PngImage, StatUpdate


def roundtrip(msg: Msg) -> Msg:
    out = Msg.from_bytes(msg.to_bytes())
    assert out == msg
    return out


def test_header_fields_roundtrip() -> None:
    msg = Msg(
        sender="12D3KooWsender",
        content_type=Msg.PROFILE_REQUEST,
        channel="12D3KooWsender::dm:12D3KooWpeer-profile_request~x",
        piggyback="tok0",
        timestamp_net="2026-01-01 00:00:00.000000",
    )
    out = roundtrip(msg)
    assert (out.sender, out.content_type, out.channel, out.piggyback, out.timestamp_net) == (
        "12D3KooWsender",
        "profile_request",
        "12D3KooWsender::dm:12D3KooWpeer-profile_request~x",
        "tok0",
        "2026-01-01 00:00:00.000000",
    )
    assert out.content_kind is None and out.content is None


def test_json_content() -> None:
    content = {"a": [1, 2, {"b": None}], "c": "ü"}
    out = roundtrip(Msg("s", content=content, content_type=Msg.PROFILE))
    assert out.content_kind == "json_content"
    assert out.content == content


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool", "float16"])
def test_tensor_sample(dtype: str) -> None:
    data = (np.arange(24) % 3).astype(dtype).reshape(2, 3, 4)
    msg = Msg(
        "s",
        content={"cam": {"data": data, "data_tag": 7, "data_uuid": "u-1"}},
        content_type=Msg.STREAM_SAMPLE,
    )
    out = roundtrip(msg)
    assert out.content_kind == "stream_sample"
    sample = out.content["cam"]
    assert sample["data_tag"] == 7 and sample["data_uuid"] == "u-1"
    np.testing.assert_array_equal(sample["data"], data)
    assert sample["data"].dtype.name == dtype
    # on the wire as the Go side sends it: gzipped raw bytes, dtype name, shape
    tensor = out.proto.stream_sample.samples["cam"].data.tensor_data
    assert gzip.decompress(tensor.data) == data.tobytes()
    assert (tensor.dtype, list(tensor.shape)) == (dtype, [2, 3, 4])


def test_image_text_file_samples_and_missing_uuid() -> None:
    content = {
        "img": {"data": PngImage(b"\x89PNG\r\n\x1a\nfake"), "data_tag": 1},
        "txt": {"data": "hello", "data_tag": -1, "data_uuid": None},
        "file": {"data": FileContent(b"abc", "a.txt", "text/plain"), "data_tag": 2},
    }
    out = roundtrip(Msg("s", content=content, content_type=Msg.STREAM_SAMPLE)).content
    assert out["img"]["data"] == PngImage(b"\x89PNG\r\n\x1a\nfake")
    assert out["txt"] == {"data": "hello", "data_tag": -1, "data_uuid": None}
    assert out["file"]["data"] == FileContent(b"abc", "a.txt", "text/plain")
    assert out["img"]["data_uuid"] is None


def test_stats_update() -> None:
    updates = [
        StatUpdate("p1", "reward", 1_700_000_000_123, 0.5),
        StatUpdate("p2", "state", 5, {"k": ["v", True, None]}),
        StatUpdate("p3", "empty", 6, None),
    ]
    out = roundtrip(Msg("s", content=updates, content_type=Msg.STATS_UPDATE))
    assert out.content_kind == "stats_update"
    assert out.content == updates


def test_garbage_is_a_typed_error() -> None:
    with pytest.raises(MeshMessageError) as info:
        Msg.from_bytes(b"\xff\xff\xff\xff\x0f")
    assert isinstance(info.value, InputError)
    # a string field (sender, 1) holding invalid UTF-8
    with pytest.raises(MeshMessageError):
        Msg.from_bytes(b"\x0a\x02\xc3\x28")


def test_oversized_message_refused_before_parsing() -> None:
    big = Msg("s", content="x" * 2000).to_bytes()
    with pytest.raises(MeshMessageError, match="over"):
        Msg.from_bytes(big, max_size=1000)


def _tensor_msg(data: bytes, dtype: str, shape: list[int]) -> Msg:
    msg = Msg("s", content_type=Msg.STREAM_SAMPLE)
    t = msg.proto.stream_sample.samples["t"].data.tensor_data
    t.data, t.dtype = data, dtype
    t.shape.extend(shape)
    return Msg.from_bytes(msg.to_bytes())


def test_tensor_bomb_and_mismatch_are_refused() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))  # 8 MiB of zeros in a few KiB
    with pytest.raises(MeshMessageError, match="does not hold"):
        _ = _tensor_msg(bomb, "uint8", [4]).content
    with pytest.raises(MeshMessageError, match="over"):
        _ = _tensor_msg(bomb, "float64", [1 << 20, 1 << 10]).content
    with pytest.raises(MeshMessageError, match="not gzip"):
        _ = _tensor_msg(b"plain", "uint8", [5]).content
    with pytest.raises(MeshMessageError, match="dtype"):
        _ = _tensor_msg(gzip.compress(b"ab"), "bfloat16", [1]).content
    with pytest.raises(MeshMessageError, match="negative"):
        _ = _tensor_msg(gzip.compress(b""), "uint8", [-1]).content


def test_bad_content_is_a_typed_error() -> None:
    with pytest.raises(MeshMessageError):
        Msg("s", content={"x": object()})
    with pytest.raises(MeshMessageError):
        Msg("s", content={"x": {"data": 3.5}}, content_type=Msg.STREAM_SAMPLE)
    with pytest.raises(MeshMessageError):
        Msg("s", content=["not a StatUpdate"], content_type=Msg.STATS_UPDATE)
    with pytest.raises(MeshMessageError):
        Msg(123)  # type: ignore[arg-type]


@given(
    sender=st.text(max_size=60),
    content_type=st.sampled_from(sorted(Msg.CONTENT_TYPES - {Msg.STREAM_SAMPLE, Msg.STATS_UPDATE})),
    piggyback=st.text(max_size=80),
    content=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=10,
    ),
)
def test_json_roundtrip_property(
    sender: str, content_type: str, piggyback: str, content: object
) -> None:
    msg = Msg(sender, content=content, content_type=content_type, piggyback=piggyback)
    out = Msg.from_bytes(msg.to_bytes())
    assert (out.sender, out.content_type, out.piggyback) == (sender, content_type, piggyback)
    if content is not None:
        assert out.content == content


@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        msg = Msg.from_bytes(data)
    except MeshMessageError:
        return
    with contextlib.suppress(MeshMessageError):
        _ = msg.content
