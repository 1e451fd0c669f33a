"""Decode the few protobuf messages of a tensor bundle index without TensorFlow's pb2 modules."""

# Importing tensorflow.core.protobuf.tensor_bundle_pb2 executes tensorflow/__init__.py (measured:
# ~2.6 s and tensorflow.python ends up in sys.modules), so these small proto3 messages are
# decoded by hand. Field numbers and types come from:
#   tensorflow/core/protobuf/tensor_bundle.proto   BundleHeaderProto, BundleEntryProto
#   tensorflow/core/framework/versions.proto       VersionDef
#   tensorflow/core/framework/tensor_shape.proto   TensorShapeProto, TensorShapeProto.Dim
#   tensorflow/core/framework/tensor_slice.proto   TensorSliceProto, TensorSliceProto.Extent
#   tensorflow/core/framework/types.proto          DataType

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ckptlib.formats.bundle.table import FormatError, read_varint

# DataType enum values (types.proto) -> numpy-style names, as tf.DType.name spells them.
DTYPE_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32",
    14: "bfloat16", 15: "qint16", 16: "quint16", 17: "uint16", 18: "complex128", 19: "float16",
    20: "resource", 21: "variant", 22: "uint32", 23: "uint64", 24: "float8_e5m2",
    25: "float8_e4m3fn", 26: "float8_e4m3fnuz", 27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz",
    29: "int4", 30: "uint4", 31: "int2", 32: "uint2", 33: "float4_e2m1fn",
}  # fmt: skip
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _fields(buf: bytes):
    """Yield (field_number, wire_type, value) of one serialized message."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise FormatError("protobuf field number 0")
        if wire == _VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire in (_BYTES, _FIXED32, _FIXED64):
            width = {_FIXED32: 4, _FIXED64: 8}.get(wire)
            if width is None:
                width, pos = read_varint(buf, pos, end)
            if pos + width > end:
                raise FormatError(f"protobuf field {number} runs past its message")
            value, pos = buf[pos : pos + width], pos + width
            if wire != _BYTES:
                value = int.from_bytes(value, "little")
        else:  # groups (3, 4) are proto2-only and never used by these messages
            raise FormatError(f"protobuf wire type {wire} in field {number}")
        yield number, wire, value


def _decode(buf: bytes, schema: dict[int, int]) -> dict[int, list]:
    """The known fields of a message as {number: [values]}; unknown fields are skipped, as protobuf does."""
    found: dict[int, list] = {}
    for number, wire, value in _fields(buf):
        want = schema.get(number)
        if want is None:
            continue
        if want == _VARINT and wire == _BYTES:  # proto3 packs repeated scalars
            pos, values = 0, found.setdefault(number, [])
            while pos < len(value):
                item, pos = read_varint(value, pos, len(value))
                values.append(_int64(item))
            continue
        if wire != want:
            raise FormatError(f"protobuf field {number} has wire type {wire}, expected {want}")
        found.setdefault(number, []).append(_int64(value) if wire == _VARINT else value)
    return found


def _int64(value: int) -> int:
    # int32/int64/enum fields are two's-complement varints: negatives take 10 bytes. A 10-byte varint can
    # hold up to 2^70 - 1: what lies past 64 bits is kept as it is, and refused by whoever range-checks it.
    return value - (1 << 64) if (1 << 63) <= value < (1 << 64) else value


def _last(found: dict[int, list], number: int, default=0):
    # A scalar field seen twice keeps its last value (protobuf's merge rule).
    return found[number][-1] if number in found else default


@dataclass(frozen=True)
class BundleHeader:
    """BundleHeaderProto: how many shards, which byte order, which format version."""

    num_shards: int
    big_endian: bool
    min_consumer: int
    bad_consumers: tuple[int, ...]


@dataclass(frozen=True)
class EntryProto:
    """BundleEntryProto: where one tensor (or one slice of a partitioned one) is stored."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c_masked: int
    slices: tuple[tuple[tuple[int, int], ...], ...]  # (start, length) per dim; length -1 = all


def parse_header(buf: bytes) -> BundleHeader:
    """Decode a BundleHeaderProto (the value stored under the empty key)."""
    found = _decode(buf, {1: _VARINT, 2: _VARINT, 3: _BYTES})
    version = _decode(_last(found, 3, b""), {1: _VARINT, 2: _VARINT, 3: _VARINT})  # VersionDef
    endianness = _last(found, 2)
    if endianness not in (0, 1):
        raise FormatError(f"bundle header has unknown endianness {endianness}")
    return BundleHeader(_last(found, 1), endianness == 1, _last(version, 2), tuple(version.get(3, ())))


# TensorFlow's own limits on a shape (tensorflow/core/framework/tensor_shape.h and .cc): at most
# TensorShape::MaxDimensions() dimensions, each in [0, 2^63), and a product that fits an int64
# (TensorShapeBase::InitDims fails on overflow). Shapes past them are damage, not tensors: TF aborts on
# some of them (a CHECK in its reader), so they are refused before anything else sees the index.
MAX_RANK = 254
INT64_MAX = (1 << 63) - 1


def check_shape(dims: tuple[int, ...]) -> tuple[int, ...]:
    """`dims` when TensorFlow could hold a tensor of that shape, else FormatError saying what is wrong."""
    if len(dims) > MAX_RANK:
        raise FormatError(f"shape has {len(dims)} dimensions (TensorFlow allows at most {MAX_RANK})")
    bad = next((size for size in dims if not 0 <= size <= INT64_MAX), None)
    if bad is not None:
        raise FormatError(f"shape has dimension {bad} (dimensions lie in 0 .. 2^63-1)")
    if num_elements(dims) > INT64_MAX:
        raise FormatError(f"shape {list(dims)} has more than 2^63-1 elements")
    return dims


def _shape(buf: bytes) -> tuple[int, ...]:
    found = _decode(buf, {2: _BYTES, 3: _VARINT})
    if _last(found, 3):
        raise FormatError("shape has unknown rank")
    if len(found.get(2, ())) > MAX_RANK:  # before decoding 100,000 dims one by one
        raise FormatError(f"shape has {len(found[2])} dimensions (TensorFlow allows at most {MAX_RANK})")
    return check_shape(tuple(_last(_decode(dim, {1: _VARINT}), 1) for dim in found.get(2, ())))


def _slice(buf: bytes) -> tuple[tuple[int, int], ...]:
    extents = []
    for extent in _decode(buf, {1: _BYTES}).get(1, ()):
        found = _decode(extent, {1: _VARINT, 2: _VARINT})
        start, length = _last(found, 1), _last(found, 2, -1)  # no length: the whole dimension
        if start < 0 or length < -1:
            raise FormatError(f"slice has extent start={start} length={length}")
        extents.append((start, length))
    return tuple(extents)


def parse_entry(buf: bytes) -> EntryProto:
    """Decode a BundleEntryProto."""
    schema = {1: _VARINT, 2: _BYTES, 3: _VARINT, 4: _VARINT, 5: _VARINT, 6: _FIXED32, 7: _BYTES}
    found = _decode(buf, schema)
    shard_id, offset, size = _last(found, 3), _last(found, 4), _last(found, 5)
    if shard_id < 0 or offset < 0 or size < 0:
        raise FormatError(f"entry has shard {shard_id}, offset {offset}, size {size}")
    return EntryProto(_last(found, 1), _shape(_last(found, 2, b"")), shard_id, offset, size,
                      _last(found, 6), tuple(_slice(s) for s in found.get(7, ())))  # fmt: skip


# --- slice keys: tensorflow/core/util/saved_tensor_slice_util.cc EncodeTensorNameSlice, -------
# built from OrderedCode (tensorflow/core/lib/strings/ordered_code.cc). Encoding the key from
# the full entry's slice list is simpler than decoding every "\x00"-prefixed key.
_SIGNED_HEADER = [(0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0),
                  (0xFE, 0), (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0)]  # kLengthToHeaderBits; fmt: skip
_ESCAPES = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}  # WriteString's escapes, one pass


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _signed_num_increasing(value: int) -> bytes:
    magnitude = ~value if value < 0 else value
    length = magnitude.bit_length() // 7 + 1  # kBitsToLength in ordered_code.cc
    body = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big")[10 - length :])
    body[0] ^= _SIGNED_HEADER[length][0]
    if length > 1:
        body[1] ^= _SIGNED_HEADER[length][1]
    return bytes(body)


def slice_key(name: bytes, extents: tuple[tuple[int, int], ...]) -> bytes:
    """The table key under which one slice of partitioned tensor `name` is stored."""
    escaped = re.sub(rb"[\x00\xff]", lambda m: _ESCAPES[m.group()], name)
    parts = [_num_increasing(0), escaped, b"\x00\x01", _num_increasing(len(extents))]
    for start, length in extents:
        parts.append(_signed_num_increasing(start))
        parts.append(_signed_num_increasing(length))
    return b"".join(parts)


# --- the public form of entries (built by entries.py) ---------------------------------------
@dataclass(frozen=True)
class BundleEntry:
    """One stored tensor. `crc32c` is TensorFlow's checksum of it, unmasked (None if partitioned).

    For a partitioned variable, `shard_id`/`offset` are its first slice's and `size` is the sum
    of its slices' sizes. For strings the checksum covers each length as a uint32, not as stored.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    is_partitioned: bool
    problem: str | None = None  # why it cannot be read (slices that do not tile it), listed all the same


@dataclass(frozen=True)
class BundlePart:
    """One slice of a partitioned variable: (start, stop) per dimension, and where it is stored."""

    bounds: tuple[tuple[int, int], ...]
    entry: BundleEntry


def num_elements(shape: tuple[int, ...]) -> int:
    """Elements in a shape, as a Python int (no overflow for absurd shapes from a damaged file)."""
    return math.prod(shape)


def key_label(key: bytes) -> str:
    """How a table key is named in a message: 'name', or a slice of 'name' (EncodeTensorNameSlice keys)."""
    if key.startswith(b"\x00"):  # NumIncreasing(0), the name with 0x00/0xff escaped, then 0x00 0x01
        name = key[1:].split(b"\x00\x01", 1)[0].replace(b"\x00\xff", b"\x00").replace(b"\xff\x00", b"\xff")
        return f"a slice of '{name.decode('utf-8', 'backslashreplace')}'"
    return f"'{key.decode('utf-8', 'backslashreplace')}'"


# Public for the other hand-decoded messages of ckptlib (the SaverDef inside a .meta file).
decode_message = _decode
FIXED32, BYTES, VARINT, FIXED64 = _FIXED32, _BYTES, _VARINT, _FIXED64
# ... and for the V1 format's SavedSliceMeta (formats/v1table.py), which holds the same shape and slice protos.
parse_shape, parse_slice, last_value, fields = _shape, _slice, _last, _fields
