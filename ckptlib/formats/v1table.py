"""TensorFlow's V1 checkpoints (TF <= 0.11, one file such as `model.ckpt-1000`): listed natively, read by TF."""

# The V1 saver (Saver(write_version=SaverDef.V1), tensorflow/core/util/tensor_slice_writer.cc) writes one
# LevelDB-style table, the same table as a V2 `.index` (bundle/table.py), holding SavedTensorSlices
# messages (tensorflow/core/util/saved_tensor_slice.proto):
#   key ""                                   meta = 1: SavedTensorSliceMeta { tensor = 1: SavedSliceMeta
#                                            { name = 1, shape = 2, type = 3, slice = 4 (repeated) } }
#   key EncodeTensorNameSlice(name, slice)   data = 2: SavedSlice { name = 1, slice = 2, data = 3: TensorProto }
# TensorProto keeps the values in the typed repeated field of its dtype (float_val, int_val, ...: the Fill
# specialisations of tensorflow/core/util/saved_tensor_slice_util.h). TensorFlow 2.21 still reads such
# files (tensorflow/core/util/tensor_slice_reader.cc, behind tf.train.load_checkpoint): this module lists
# them without TensorFlow and reads values through it, after checking what it would trust (shapes, dtypes,
# that every value is there), since its reader aborts on some damage, as the V2 one does (tfreader.py).

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ckptlib import _tf, errors, storage
from ckptlib.formats.base import CHUNK_ELEMENTS, Checkpoint, variable_info
from ckptlib.formats.bundle.entries import NameClash
from ckptlib.formats.bundle.index import bundle_error
from ckptlib.formats.bundle.protos import (BYTES, DTYPE_NAMES, VARINT, decode_message, fields, last_value,
                                           num_elements, parse_shape, parse_slice, slice_key)
from ckptlib.formats.bundle.table import FormatError, NotATable, TableTooLarge, load_table_file, read_table
from ckptlib.formats.tfreader import tf_errors
from ckptlib.formats.types import VariableInfo

BACKENDS = ("native", "tf")  # listed by ckptlib or by TensorFlow; values always come from TensorFlow's reader
_FOOTER_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")  # table.cc's kTableMagicNumber
_SUFFIXES = (".meta",)  # a V1 save writes PREFIX (the table) and PREFIX.meta
# The dtypes TensorFlow 2.21's V1 reader reads (others: "Data type not supported"; float16, complex and
# quantized ones, measured) and the TensorProto field holding their values (saved_tensor_slice_util.h).
_VALUE_FIELDS = {"float32": 5, "float64": 6, "int32": 7, "int16": 7, "int8": 7, "uint8": 7, "string": 8,
                 "int64": 10, "bool": 11}  # fmt: skip
_FIXED_WIDTH = {5: 4, 6: 8}  # packed float/double fields; the others are varints (or, for strings, bytes)


@dataclass(frozen=True)
class _Tensor:
    """One SavedSliceMeta: a tensor's name, dtype, shape, its slices' (start, length) extents, stored bytes."""

    key: bytes
    name: str
    dtype: str
    shape: tuple[int, ...]
    slices: tuple[tuple[tuple[int, int], ...], ...]
    nbytes: int


def sniff(path: str) -> str | None:
    """The V1 checkpoint file `path` names (the file or its .meta), or None: the table magic at its end and
    a metadata entry at its start, read in a few bytes (a V2 `.index` starts with a header instead)."""
    for suffix in _SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    if storage.is_url(path) or storage.exists(path + ".index") or not storage.isfile(path):
        return None
    try:
        with storage.RangeFile(path) as f:
            size = f.size()
            head, tail = bytearray(16), bytearray(8)
            if size < 48 or f.readinto(0, memoryview(head)) < 4 or f.readinto(size - 8, memoryview(tail)) < 8:
                return None
    except OSError:
        return None
    # First entry of the first block: shared 0, key length 0 (key ""), a value length, then the value:
    # SavedTensorSlices starting with its `meta` field (tag 0x0a). A V2 header starts 0x08 (num_shards).
    length_end = next((i for i in range(2, 7) if head[i] < 0x80), None)
    if head[:2] != b"\x00\x00" or length_end is None or head[length_end + 1] != 0x0A or bytes(tail) != _FOOTER_MAGIC:
        return None
    return path


class V1Checkpoint(Checkpoint):
    """A V1 checkpoint file. Listing needs no TensorFlow; reading values does (UnsupportedFormat without it).

    Partitioned variables (several slices) are listed but not read: TensorFlow's Python reader refuses
    sliced V1 tensors ("Sliced checkpoints are not supported").
    """

    format_name = "tf-checkpoint-v1"

    def __init__(self, path: str, backend: str = "native", chunk_elements: int = CHUNK_ELEMENTS):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        super().__init__(path, chunk_elements)
        self.backend = backend

    def _error(self, kind: type[errors.CkptError], problem: str) -> errors.CkptError:
        return bundle_error(kind, self.prefix, problem)

    @cached_property
    def _table(self) -> dict[bytes, bytes]:
        name = os.path.basename(self.prefix)
        try:
            return dict(read_table(load_table_file(self.prefix)))
        except FileNotFoundError:
            raise self._error(errors.NotFound, f"V1 checkpoint file {name} does not exist") from None
        except storage.NotARegularFile as exc:
            raise self._error(errors.NotACheckpoint, f"V1 checkpoint file {name} is {exc.strerror}") from None
        except OSError as exc:
            raise self._error(errors.CkptError, f"V1 checkpoint file {name} cannot be read ({exc.strerror})") from None
        except (NotATable, TableTooLarge) as exc:
            raise self._error(errors.NotACheckpoint, f"V1 checkpoint file {name} is {exc}") from None
        except FormatError as exc:
            raise self._error(errors.CorruptCheckpoint, f"V1 checkpoint file {name} is corrupt: {exc}") from None

    @cached_property
    def _tensors(self) -> dict[str, _Tensor]:
        table, found = self._table, {}
        try:
            meta = decode_message(table.get(b"", b""), {1: BYTES})
            if 1 not in meta:
                raise FormatError("it has no metadata entry (SavedTensorSliceMeta)")
            for raw in decode_message(meta[1][-1], {1: BYTES}).get(1, ()):
                tensor = self._tensor(raw, table)
                if tensor.name in found:
                    raise NameClash(f"keys {found[tensor.name].key!r} and {tensor.key!r} both read as the "
                                    f"variable name '{tensor.name}'")  # fmt: skip
                found[tensor.name] = tensor
        except NameClash as exc:
            raise self._error(errors.UnsupportedFormat, str(exc)) from None
        except FormatError as exc:
            where = os.path.basename(self.prefix)
            raise self._error(errors.CorruptCheckpoint, f"V1 checkpoint file {where} is corrupt: {exc}") from None
        return dict(sorted(found.items()))

    @staticmethod
    def _tensor(raw: bytes, table: dict[bytes, bytes]) -> _Tensor:
        # SavedSliceMeta (saved_tensor_slice.proto): name = 1, shape = 2, type = 3, slice = 4.
        found = decode_message(raw, {1: BYTES, 2: BYTES, 3: VARINT, 4: BYTES})
        key = last_value(found, 1, b"")
        name = key.decode("utf-8", "backslashreplace")
        try:
            shape = parse_shape(last_value(found, 2, b""))
            slices = tuple(parse_slice(s) for s in found.get(4, ()))
        except FormatError as exc:
            raise FormatError(f"'{name}': {exc}") from None
        for extents in slices:
            if len(extents) != len(shape) or any(n != -1 and s + n > d for (s, n), d in zip(extents, shape)):
                raise FormatError(f"a slice of '{name}' does not fit its shape {list(shape)}")
        nbytes = sum(len(table.get(slice_key(key, extents), b"")) for extents in slices)
        dtype = DTYPE_NAMES.get(last_value(found, 3), f"unknown_dtype_{last_value(found, 3)}")
        return _Tensor(key, name, dtype, shape, slices, nbytes)

    @cached_property
    def _reader(self):
        unknown = next((t for t in self._tensors.values() if t.dtype.startswith("unknown")), None)
        if unknown is not None:  # TensorFlow's reader aborts on it
            raise self._error(errors.UnsupportedFormat, f"variable '{unknown.name}' has dtype {unknown.dtype}, "
                              "which TensorFlow's reader cannot read")  # fmt: skip
        return _tf.v1_checkpoint_reader(self.prefix)  # UnsupportedFormat when TensorFlow is not installed

    @cached_property
    def variables(self) -> tuple[VariableInfo, ...]:
        """Every tensor sorted by name, from the file's metadata (backend "tf": as TensorFlow lists them)."""
        tensors = self._tensors
        if self.backend == "native":
            return tuple(variable_info(t.name, t.dtype, t.shape, t.nbytes) for t in tensors.values())
        reader = self._reader
        with tf_errors(self.prefix):
            shapes = reader.get_variable_to_shape_map()
            dtypes = reader.get_variable_to_dtype_map()
        return tuple(variable_info(name, dtypes[name].name, tuple(int(d) for d in shapes[name]),
                                   tensors[name].nbytes if name in tensors else 0) for name in sorted(shapes))

    def read(self, name: str) -> np.ndarray:
        """The whole tensor, read by TensorFlow's reader once its stored values are checked to be all there."""
        info = self.info(name)
        tensor = self._tensors.get(info.name)
        if tensor is None:
            raise errors.VariableNotFound(f"Checkpoint '{self.prefix}' has no variable '{name}'.")
        self._check_values(tensor)
        reader = self._reader
        with tf_errors(self.prefix):
            value = reader.get_tensor(tensor.name)
        return np.asarray(value, dtype=object) if tensor.dtype == "string" else np.asarray(value)

    def _check_values(self, tensor: _Tensor) -> None:
        if tensor.dtype not in _VALUE_FIELDS:
            raise self._error(errors.UnsupportedFormat, f"variable '{tensor.name}' has dtype {tensor.dtype}, "
                              "which TensorFlow's reader cannot read from a V1 checkpoint")  # fmt: skip
        if len(tensor.slices) != 1 or any(n != -1 and n != d for (_, n), d in zip(tensor.slices[0], tensor.shape)):
            raise self._error(errors.UnsupportedFormat, f"variable '{tensor.name}' is partitioned into "
                              f"{len(tensor.slices)} slices, which TensorFlow's reader cannot read from a V1 "
                              "checkpoint")  # fmt: skip
        raw = self._table.get(slice_key(tensor.key, tensor.slices[0]))
        try:
            if raw is None:
                raise FormatError("its values are missing")
            stored = _count_values(raw, tensor.dtype)
        except FormatError as exc:
            raise self._error(errors.CorruptCheckpoint, f"variable '{tensor.name}': {exc}") from None
        if stored != num_elements(tensor.shape):
            raise self._error(errors.CorruptCheckpoint, f"variable '{tensor.name}' stores {stored} values for "
                              f"its shape {list(tensor.shape)}")  # fmt: skip


def _count_values(raw: bytes, dtype: str) -> int:
    """Elements stored in SavedTensorSlices.data (= 2) -> SavedSlice.data (= 3) -> the dtype's TensorProto field."""
    data = decode_message(raw, {2: BYTES})
    tensor = decode_message(last_value(data, 2, b""), {3: BYTES})
    number = _VALUE_FIELDS[dtype]
    width = _FIXED_WIDTH.get(number)
    count = 0
    for field, wire, value in fields(last_value(tensor, 3, b"")):
        if field != number:
            continue
        if wire == BYTES and dtype != "string":  # packed: fixed-width values, or varints (one ends per byte < 0x80)
            if width and len(value) % width:
                raise FormatError(f"packed field {number} of {len(value)} bytes is not whole values")
            count += len(value) // width if width else int(np.count_nonzero(np.frombuffer(value, np.uint8) < 0x80))
        else:
            count += 1
    return count
