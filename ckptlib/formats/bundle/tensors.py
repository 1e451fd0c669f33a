"""Read a tensor bundle's index and its tensors' bytes without importing TensorFlow."""

# The bundle layout (tensorflow/core/util/tensor_bundle/tensor_bundle.h and .cc):
#   PREFIX.index                     a table (see table.py): key "" -> BundleHeaderProto,
#                                    key tensor name -> BundleEntryProto
#   PREFIX.data-%05d-of-%05d         raw tensor bytes at BundleEntryProto.offset (DataFilename)
# Numeric tensors are stored as their in-memory bytes, C order, in the header's byte order.
# String tensors (WriteStringTensor): varint64 length per element, a uint32 masked crc32c of
# the lengths (each checksummed as a uint32, not as its varint), then the element bytes.
# BundleEntryProto.crc32c is the masked crc32c of everything stored for the entry. Partitioned
# variables (BundleWriter::AddSlice) get a full entry listing their slices; each slice is stored
# as an ordinary entry under its own key.

from __future__ import annotations

import numpy as np

from ckptlib.errors import CorruptCheckpoint, UnsupportedFormat, VariableNotFound
from ckptlib.formats.bundle import protos
from ckptlib.formats.bundle.index import BundleIndex, bundle_error
from ckptlib.formats.bundle.protos import BundleEntry
from ckptlib.formats.bundle.shards import check_extent, crc_error, open_shard, read_exactly, shard_name, to_host_order
from ckptlib.formats.bundle.table import FormatError, crc32c, read_varint, unmask_crc

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes comes with TensorFlow and JAX
    ml_dtypes = None


# Quantized types hold plain integers: TensorFlow's get_tensor returns them as those too.
_INTEGER_TWINS = {"qint8": "int8", "quint8": "uint8", "qint16": "int16", "quint16": "uint16", "qint32": "int32"}


def numpy_dtype_of(name: str) -> np.dtype | None:
    """The numpy dtype of a DTYPE_NAMES name; None for string, resource, variant and unknown ones."""
    name = _INTEGER_TWINS.get(name, name)
    if name == "bool":
        return np.dtype(np.bool_)
    if name in ("string", "resource", "variant") or name.startswith("unknown"):
        return None
    if hasattr(np, name):
        return np.dtype(name)
    return np.dtype(getattr(ml_dtypes, name)) if hasattr(ml_dtypes, name) else None


def _numpy_dtype(index: BundleIndex, entry: BundleEntry) -> np.dtype:
    dtype = numpy_dtype_of(entry.dtype)
    if dtype is None:
        raise bundle_error(UnsupportedFormat, index.prefix, f"variable '{entry.name}' has dtype {entry.dtype}, "
                           "which ckptlib cannot read")  # fmt: skip
    return dtype


def _require_bytes(index: BundleIndex, entry: BundleEntry) -> None:
    with open_shard(index, entry) as f:
        check_extent(index, entry, f)


def _read_raw(index: BundleIndex, entry: BundleEntry, verify: bool = True) -> np.ndarray:
    """The entry's stored bytes, read straight into a preallocated buffer."""
    with open_shard(index, entry) as f:
        check_extent(index, entry, f)
        raw = np.empty(entry.size, dtype=np.uint8)
        read_exactly(index, entry, f, entry.offset, memoryview(raw))
    if verify and crc32c(raw) != entry.crc32c:
        raise crc_error(index, entry)
    return raw


def _decode_strings(index: BundleIndex, entry: BundleEntry, buf: bytes) -> np.ndarray:
    count = protos.num_elements(entry.shape)
    order = "big" if index.big_endian else "little"
    try:
        if count + 4 > len(buf):  # every element needs at least one length byte
            raise FormatError(f"{len(buf)} bytes cannot hold {count} strings")
        lengths, pos = [], 0
        for _ in range(count):
            length, pos = read_varint(buf, pos, len(buf))
            lengths.append(length)
        if pos + 4 + sum(lengths) != len(buf):
            raise FormatError("string lengths do not add up to the stored size")
        # WriteStringTensor checksums each length as a host-order uint32 (uint64 past 4 GiB),
        # not as the varint it stores, "for backwards compatibility".
        crc = crc32c(b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, order) for n in lengths))
        if unmask_crc(int.from_bytes(buf[pos : pos + 4], order)) != crc:
            raise FormatError("string lengths do not match their checksum")
    except FormatError as exc:
        shard = shard_name(index, entry)
        raise bundle_error(CorruptCheckpoint, index.prefix, f"string tensor '{entry.name}' in data file "
                           f"{shard} is damaged: {exc}")  # fmt: skip
    # The entry's crc32c then continues over the stored length checksum and the string bytes.
    if crc32c(buf[pos:], crc) != entry.crc32c:
        raise crc_error(index, entry)
    out = np.empty(count, dtype=object)
    pos += 4
    for i, length in enumerate(lengths):
        out[i] = buf[pos : pos + length]
        pos += length
    return out.reshape(entry.shape)


def check_size(index: BundleIndex, entry: BundleEntry) -> np.dtype | None:
    """The numpy dtype (None for strings), once the stored size fits the shape."""
    count = protos.num_elements(entry.shape)
    dtype = None if entry.dtype == "string" else _numpy_dtype(index, entry)
    # A string takes at least one length byte; other dtypes take exactly itemsize bytes each.
    if (count > entry.size) if dtype is None else (count * dtype.itemsize != entry.size):
        raise bundle_error(CorruptCheckpoint, index.prefix, f"'{entry.name}' is stored in {entry.size} bytes, "
                           f"which does not fit {entry.dtype}{list(entry.shape)}")  # fmt: skip
    return dtype


def variable_entry(index: BundleIndex, name: str) -> BundleEntry:
    """The entry of variable `name`; VariableNotFound when the checkpoint has none."""
    entry = index.entries.get(name)
    if entry is None:
        raise bundle_error(VariableNotFound, index.prefix, f"it has no variable named '{name}'")
    return entry


def _read_stored(index: BundleIndex, entry: BundleEntry) -> np.ndarray:
    dtype = check_size(index, entry)
    if dtype is None:
        return _decode_strings(index, entry, _read_raw(index, entry, verify=False).tobytes())
    raw = _read_raw(index, entry)
    return to_host_order(raw, dtype, index.big_endian).reshape(entry.shape)


def read_tensor(index: BundleIndex, name: str) -> np.ndarray:
    """The full tensor `name` as a C-order array (strings: object array of bytes), crc-checked."""
    entry = variable_entry(index, name)
    if not entry.is_partitioned:
        return _read_stored(index, entry)
    dtype = check_size(index, entry)
    for part in index.parts[name]:
        _require_bytes(index, part.entry)
    out = np.empty(entry.shape, dtype=object if dtype is None else dtype)
    for part in index.parts[name]:
        out[tuple(slice(start, stop) for start, stop in part.bounds)] = _read_stored(index, part.entry)
    return out
