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
from ckptlib.formats.bundle.assemble import NUMPY_MAX_DIMS, read_partitioned
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
    """The entry's strings, flat (an object array of bytes), once their lengths and checksums hold."""
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
    return out


def check_size(index: BundleIndex, entry: BundleEntry) -> np.dtype | None:
    """The numpy dtype (None for strings), once the stored size fits the shape (each slice's its own)."""
    dtype = None if entry.dtype == "string" else _numpy_dtype(index, entry)
    stored = [part.entry for part in index.parts[entry.name]] if entry.is_partitioned else []
    for one in [entry, *stored]:
        count = protos.num_elements(one.shape)
        # A string takes at least one length byte; other dtypes take exactly itemsize bytes each.
        if (count > one.size) if dtype is None else (count * dtype.itemsize != one.size):
            what = "a slice of " if one is not entry else ""
            raise bundle_error(CorruptCheckpoint, index.prefix, f"{what}'{entry.name}' is stored in {one.size} "
                               f"bytes, which does not fit {entry.dtype}{list(one.shape)}")  # fmt: skip
    return dtype


def variable_entry(index: BundleIndex, name: str) -> BundleEntry:
    """The entry of variable `name` to read; VariableNotFound when the checkpoint has none, CorruptCheckpoint
    when its slices do not tile it."""
    entry = index.entries.get(name)
    if entry is None:
        raise bundle_error(VariableNotFound, index.prefix, f"it has no variable named '{name}'")
    if entry.problem:
        raise bundle_error(CorruptCheckpoint, index.prefix, entry.problem)
    return entry


def _read_stored(index: BundleIndex, entry: BundleEntry) -> np.ndarray:
    """One stored entry (a whole tensor or one slice), flat."""
    dtype = check_size(index, entry)
    if dtype is None:
        return _decode_strings(index, entry, _read_raw(index, entry, verify=False).tobytes())
    return to_host_order(_read_raw(index, entry), dtype, index.big_endian)


def read_flat(index: BundleIndex, name: str) -> np.ndarray:
    """The tensor `name` flattened in C order, crc-checked: any rank, numpy's 64 dimensions included."""
    entry = variable_entry(index, name)
    if not entry.is_partitioned:
        return _read_stored(index, entry)
    dtype = check_size(index, entry)
    if dtype is not None and entry.size:
        return read_partitioned(index, entry, dtype)
    if len(entry.shape) > NUMPY_MAX_DIMS:
        raise _too_many_dims(index, entry)
    for part in index.parts[name]:  # strings (or no element at all): each slice decoded whole, put in place
        _require_bytes(index, part.entry)
    out = np.empty(entry.shape, dtype=object if dtype is None else dtype)
    for part in index.parts[name]:
        value = _read_stored(index, part.entry).reshape(part.entry.shape)
        out[tuple(slice(start, stop) for start, stop in part.bounds)] = value
    return out.reshape(-1)


def vet_tensor(index: BundleIndex, name: str) -> None:
    """Fail as read_tensor would, without assembling anything: the slices tile it, every stored byte is in
    its data shard and fits the shape, a string tensor's lengths add up (TensorFlow's reader trusts these)."""
    entry = variable_entry(index, name)
    dtype = check_size(index, entry)
    for stored in [p.entry for p in index.parts[name]] if entry.is_partitioned else [entry]:
        if dtype is None:
            _read_stored(index, stored)  # decoding checks the lengths and their checksum
        else:
            _require_bytes(index, stored)


def read_tensor(index: BundleIndex, name: str) -> np.ndarray:
    """The full tensor `name` as a C-order array (strings: object array of bytes), crc-checked.

    A tensor of more than numpy's 64 dimensions (TensorFlow allows 254) raises UnsupportedFormat:
    read_flat and iter_chunks give its values flattened.
    """
    entry = variable_entry(index, name)
    if len(entry.shape) > NUMPY_MAX_DIMS:
        raise _too_many_dims(index, entry)
    return read_flat(index, name).reshape(entry.shape)


def _too_many_dims(index: BundleIndex, entry: BundleEntry):
    return bundle_error(UnsupportedFormat, index.prefix, f"variable '{entry.name}' has {len(entry.shape)} "
                        f"dimensions and numpy arrays at most {NUMPY_MAX_DIMS}: read it flattened")  # fmt: skip
