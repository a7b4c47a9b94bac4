"""The ``Msg`` protobuf schema, built in code with ``descriptor_pb2``.

The schema is the Go agent networks' proto3 ``Message`` (issue 10, "The
message format"): only field numbers and wire types matter on the wire, so the
names here live in our own package (``peerpool.mesh``) and cannot clash with a
copy of the Go schema registered in the same process under ``p2p``. Building
the descriptor here (instead of committing protoc's output) means no generated
module whose protobuf runtime version must match; the tests compile the Go
schema with protoc and compare it with this one field by field.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

PACKAGE = "peerpool.mesh"
FILE_NAME = "peerpool/mesh/msg.proto"

_F = descriptor_pb2.FieldDescriptorProto
STRING, BYTES, INT32, INT64, MESSAGE = (
    _F.TYPE_STRING,
    _F.TYPE_BYTES,
    _F.TYPE_INT32,
    _F.TYPE_INT64,
    _F.TYPE_MESSAGE,
)
OPTIONAL, REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    *,
    label: int = OPTIONAL,
    type_name: str | None = None,
    oneof: int | None = None,
    proto3_optional: bool = False,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name is not None:
        f.type_name = type_name if type_name.startswith(".") else f".{PACKAGE}.{type_name}"
    if oneof is not None:
        f.oneof_index = oneof
    if proto3_optional:
        f.proto3_optional = True


def build_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The schema as a FileDescriptorProto (also what the schema test compares)."""
    fd = descriptor_pb2.FileDescriptorProto(
        name=FILE_NAME,
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/struct.proto"],
    )

    msg = fd.message_type.add(name="Msg")
    msg.oneof_decl.add(name="content")
    for number, name in enumerate(
        ("sender", "content_type", "channel", "piggyback", "timestamp_net"), start=1
    ):
        _field(msg, name, number, STRING)
    _field(msg, "stream_sample", 6, MESSAGE, type_name="StreamSampleContent", oneof=0)
    _field(msg, "json_content", 7, STRING, oneof=0)
    _field(msg, "stats_update", 8, MESSAGE, type_name="StatBatch", oneof=0)

    content = fd.message_type.add(name="StreamSampleContent")
    entry = content.nested_type.add(name="SamplesEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, STRING)
    _field(entry, "value", 2, MESSAGE, type_name="StreamSample")
    _field(
        content,
        "samples",
        1,
        MESSAGE,
        label=REPEATED,
        type_name="StreamSampleContent.SamplesEntry",
    )

    sample = fd.message_type.add(name="StreamSample")
    _field(sample, "data", 1, MESSAGE, type_name="SampleData")
    _field(sample, "data_tag", 2, INT32)
    # proto3 `optional`: a synthetic oneof holding only this field
    sample.oneof_decl.add(name="_data_uuid")
    _field(sample, "data_uuid", 3, STRING, oneof=0, proto3_optional=True)

    data = fd.message_type.add(name="SampleData")
    data.oneof_decl.add(name="data_payload")
    _field(data, "tensor_data", 1, MESSAGE, type_name="TensorData", oneof=0)
    _field(data, "image_data", 2, MESSAGE, type_name="ImageData", oneof=0)
    _field(data, "text_data", 3, MESSAGE, type_name="TextData", oneof=0)
    _field(data, "file_data", 4, MESSAGE, type_name="FileData", oneof=0)

    tensor = fd.message_type.add(name="TensorData")
    _field(tensor, "data", 1, BYTES)
    _field(tensor, "dtype", 2, STRING)
    _field(tensor, "shape", 3, INT32, label=REPEATED)  # packed: the proto3 default

    image = fd.message_type.add(name="ImageData")
    _field(image, "data", 1, BYTES)
    text = fd.message_type.add(name="TextData")
    _field(text, "data", 1, STRING)
    file_ = fd.message_type.add(name="FileData")
    _field(file_, "content", 1, BYTES)
    _field(file_, "filename", 2, STRING)
    _field(file_, "mime_type", 3, STRING)

    stat = fd.message_type.add(name="StatUpdate")
    _field(stat, "peer_id", 1, STRING)
    _field(stat, "stat_name", 2, STRING)
    _field(stat, "timestamp", 3, INT64)  # unix milliseconds
    _field(stat, "value", 4, MESSAGE, type_name=".google.protobuf.Value")
    batch = fd.message_type.add(name="StatBatch")
    _field(batch, "updates", 1, MESSAGE, label=REPEATED, type_name="StatUpdate")
    return fd


def _register() -> dict[str, Any]:
    pool = descriptor_pool.Default()
    # struct.proto is in the default pool once struct_pb2 is imported
    assert struct_pb2.DESCRIPTOR.name == "google/protobuf/struct.proto"
    try:
        pool.FindFileByName(FILE_NAME)
    except KeyError:
        pool.Add(build_file_descriptor())
    names = (
        "Msg",
        "StreamSampleContent",
        "StreamSample",
        "SampleData",
        "TensorData",
        "ImageData",
        "TextData",
        "FileData",
        "StatUpdate",
        "StatBatch",
    )
    return {
        n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{n}"))
        for n in names
    }


_CLASSES = _register()
MsgProto: Any = _CLASSES["Msg"]
StreamSampleContentProto: Any = _CLASSES["StreamSampleContent"]
StatBatchProto: Any = _CLASSES["StatBatch"]
StatUpdateProto: Any = _CLASSES["StatUpdate"]
