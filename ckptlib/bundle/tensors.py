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

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .. import storage
from ..errors import CkptError, CorruptCheckpoint, NotACheckpoint, NotFound, UnsupportedFormat, VariableNotFound
from . import protos
from .protos import BundleEntry, BundlePart
from .shards import bundle_error, check_extent, crc_error, open_shard, read_exactly, shard_name, to_host_order
from .table import (FormatError, NotATable, UnsupportedCompression, crc32c, is_table_file, load_table_file,
                    read_table, read_varint, unmask_crc)  # fmt: skip

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes comes with TensorFlow and JAX
    ml_dtypes = None

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_SHARDS = 1_000_000  # a sanity bound: every shard is a file of its own


@dataclass(frozen=True)
class BundleIndex:
    """The decoded `.index` of a checkpoint. Example: `read_tensor(read_index("run/ckpt-5"), "w")`."""

    prefix: str
    num_shards: int
    entries: Mapping[str, BundleEntry]
    parts: Mapping[str, tuple[BundlePart, ...]] = field(default_factory=dict, repr=False)
    big_endian: bool = False

    def data_path(self, shard_id: int) -> str:
        """The data shard's file name (DataFilename in tensor_bundle.cc)."""
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def expected_shard_sizes(self) -> dict[int, int]:
        """Minimal byte size of every shard: the end of the last tensor stored in it (0 if none)."""
        sizes = dict.fromkeys(range(self.num_shards), 0)
        stored = [e for e in self.entries.values() if not e.is_partitioned]
        stored += [part.entry for parts in self.parts.values() for part in parts]
        for entry in stored:
            sizes[entry.shard_id] = max(sizes[entry.shard_id], entry.offset + entry.size)
        return sizes

    def shard_problems(self) -> tuple[str, ...]:
        """A sentence for every data shard that is missing or shorter than the index says; () if none."""
        problems = []
        for shard, needed in sorted(self.expected_shard_sizes().items()):
            path = self.data_path(shard)
            name = os.path.basename(path)
            if not storage.exists(path):
                problems.append(f"Data file {name} is missing.")
            elif (have := storage.getsize(path)) < needed:
                problems.append(f"Data file {name} is truncated: {have} bytes, the index needs {needed}.")
        return tuple(problems)


def _load_index(prefix: str) -> bytes:
    name = os.path.basename(prefix) + ".index"
    try:
        return load_table_file(prefix + ".index")
    except FileNotFoundError:
        if is_table_file(prefix):  # the single-file V1 format is a table of a different schema
            raise bundle_error(UnsupportedFormat, prefix, "it is a V1 checkpoint (one file, no .index); "
                         "only the V2 format is supported") from None  # fmt: skip
        raise bundle_error(NotFound, prefix, f"index file {name} does not exist") from None
    except IsADirectoryError:
        raise bundle_error(NotACheckpoint, prefix, f"{name} is a folder") from None
    except OSError as exc:
        raise bundle_error(CkptError, prefix, f"index file {name} cannot be read ({exc.strerror})") from None
    except NotATable as exc:
        head = exc.head
    # A bundle index starts with the entry for key "": shared=0, non_shared=0, then the header.
    if head.startswith(b"\x00\x00"):
        raise bundle_error(CorruptCheckpoint, prefix, f"index file {name} is truncated (no table footer)")
    if not head:
        raise bundle_error(NotACheckpoint, prefix, f"index file {name} is empty")
    if head.startswith(_HDF5_SIGNATURE):
        raise bundle_error(NotACheckpoint, prefix, f"index file {name} is an HDF5 file, not a bundle index")
    raise bundle_error(NotACheckpoint, prefix, f"index file {name} is not a TensorFlow checkpoint index")


def read_index(prefix: str) -> BundleIndex:
    """Decode PREFIX.index. Example: `read_index("run/model.ckpt-500").entries["w"].shape`."""
    data = _load_index(prefix)
    name = os.path.basename(prefix) + ".index"
    try:
        pairs = read_table(data)
        if not pairs or pairs[0][0] != b"":
            raise bundle_error(NotACheckpoint, prefix, f"{name} is a table without a bundle header")
        header = protos.parse_header(pairs[0][1])
        if not 1 <= header.num_shards <= _MAX_SHARDS:
            raise FormatError(f"header claims {header.num_shards} data shards")
        if header.min_consumer > 1 or 1 in header.bad_consumers:
            raise bundle_error(UnsupportedFormat, prefix, f"{name} needs a newer bundle reader "
                         f"(min_consumer={header.min_consumer})")  # fmt: skip
        raw = {key: protos.parse_entry(value) for key, value in pairs[1:]}
        entries, parts = protos.build_entries(raw, header.num_shards)
    except UnsupportedCompression as exc:
        raise bundle_error(UnsupportedFormat, prefix, f"{name}: {exc}") from None
    except FormatError as exc:
        raise bundle_error(CorruptCheckpoint, prefix, f"index file {name} is corrupt: {exc}") from None
    return BundleIndex(prefix, header.num_shards, MappingProxyType(entries),
                       MappingProxyType(parts), header.big_endian)  # fmt: skip


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
