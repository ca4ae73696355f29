"""Finds ONNX tensors stored as external data, before onnxruntime sees the graph.

A tensor of an ONNX graph may say "my bytes are in file X" (`data_location: EXTERNAL`); a graph
loaded from bytes resolves X against the current directory, so a downloaded bundle's model.onnx
could read any file the user can (and have it shape the model's output). emolive's graphs never
use external data, so a graph that does is refused unread.

This walks the protobuf wire format itself (the `onnx` package is not part of the light engine):
every message type that can hold a tensor, at any depth (subgraphs of If/Loop, functions,
sparse tensors, attributes), by the field numbers of onnx.proto; tests/test_bundle.py checks
those numbers against the installed `onnx` package's descriptors.
"""
from __future__ import annotations

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
MAX_DEPTH = 64  # nesting of subgraphs; a real graph has a handful
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

# message -> {field number: message type of that (length-delimited) field}
MESSAGES: dict[str, dict[int, str]] = {
    "ModelProto": {7: "GraphProto", 25: "FunctionProto"},
    "GraphProto": {1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto"},
    "NodeProto": {5: "AttributeProto"},
    "FunctionProto": {7: "NodeProto", 11: "AttributeProto"},
    "AttributeProto": {5: "TensorProto", 6: "GraphProto", 10: "TensorProto", 11: "GraphProto",
                       22: "SparseTensorProto", 23: "SparseTensorProto"},
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto"},
    "TensorProto": {},
}
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 13, 14


class GraphFormatError(ValueError):
    """Not a protobuf message of the expected shape, or nested past MAX_DEPTH."""


def uses_external_data(graph: bytes) -> bool:
    """True if any tensor anywhere in the serialized ModelProto is stored outside it."""
    return _scan(memoryview(graph), "ModelProto", 0)


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise GraphFormatError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _scan(data: memoryview, message: str, depth: int) -> bool:
    if depth > MAX_DEPTH:
        raise GraphFormatError(f"nested deeper than {MAX_DEPTH} levels")
    children = MESSAGES[message]
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(data, pos)
            if message == "TensorProto" and field == TENSOR_DATA_LOCATION and value == EXTERNAL:
                return True
        elif wire == FIXED64:
            pos += 8
        elif wire == FIXED32:
            pos += 4
        elif wire == LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise GraphFormatError("a field runs past the end of its message")
            if message == "TensorProto" and field == TENSOR_EXTERNAL_DATA:
                return True
            if field in children and _scan(data[pos:pos + size], children[field], depth + 1):
                return True
            pos += size
        else:
            raise GraphFormatError(f"wire type {wire} is not used by ONNX")
        if pos > len(data):
            raise GraphFormatError("a field runs past the end of its message")
    return False
