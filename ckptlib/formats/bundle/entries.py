"""A bundle's public entries: one per variable, partitioned ones once with slices that tile their shape."""

# Partitioned variables as BundleWriter::AddSlice writes them (tensorflow/core/util/tensor_bundle/
# tensor_bundle.cc): a full entry whose `slices` list TensorSliceProtos (tensorflow/core/framework/
# tensor_slice.proto), each slice stored as an ordinary entry under its EncodeTensorNameSlice key.
# BundleReader::GetSliceValue refuses a tensor its slices do not fill ("Overlapping slices", "Does not have
# sufficient slices"); here that is checked once, when the index is read: every slice inside the shape, no
# two overlapping, their volumes adding up to the whole, and no two slices stored on the same bytes (so
# that assembling one never costs more memory than the data shards hold). A variable that fails is listed,
# with its problem, and reading it raises (TensorFlow lists it too, and refuses to read it).

from __future__ import annotations

from ckptlib.formats.bundle.protos import DTYPE_NAMES, BundleEntry, BundlePart, EntryProto, num_elements, slice_key
from ckptlib.formats.bundle.table import FormatError, unmask_crc

Bounds = tuple[tuple[int, int], ...]


class NameClash(FormatError):
    """Two keys of the table read as the same variable name (keys that are not UTF-8 are shown escaped)."""


def _entry(name: str, proto: EntryProto, num_shards: int) -> BundleEntry:
    if proto.shard_id >= num_shards:
        raise FormatError(f"'{name}' is in shard {proto.shard_id} of {num_shards}")
    dtype = DTYPE_NAMES.get(proto.dtype, f"unknown_dtype_{proto.dtype}")
    return BundleEntry(name, dtype, proto.shape, proto.shard_id, proto.offset, proto.size,
                       unmask_crc(proto.crc32c_masked), False)  # fmt: skip


def show_bounds(bounds: Bounds) -> str:
    """[0:5, 0:4]: a slice as a person reads it."""
    return "[" + ", ".join(f"{start}:{stop}" for start, stop in bounds) + "]"


def _overlap(a: Bounds, b: Bounds) -> bool:
    return all(max(a0, b0) < min(a1, b1) for (a0, a1), (b0, b1) in zip(a, b))


def tiling_problem(shape: tuple[int, ...], slices: list[Bounds]) -> str | None:
    """Why `slices` (each inside `shape`) do not tile it exactly: two that overlap, or elements left out."""
    # A sweep along dimension 0: only slices whose rows meet can overlap. Partitioners cut one axis,
    # so the active list stays short; a grid of n slices costs O(n * sqrt(n)).
    order = sorted((b for b in slices if num_elements(tuple(e - s for s, e in b))), key=lambda b: b[:1])
    active: list[Bounds] = []
    for box in order:
        row = box[0][0] if box else 0
        active = [other for other in active if not other or other[0][1] > row]
        clash = next((other for other in active if _overlap(box, other)), None)
        if clash is not None:
            what = "is listed twice" if clash == box else f"overlaps slice {show_bounds(clash)}"
            return f"slice {show_bounds(box)} {what}"
        active.append(box)
    covered = sum(num_elements(tuple(e - s for s, e in b)) for b in slices)
    if covered != num_elements(shape):
        return f"its slices cover {covered} of its {num_elements(shape)} elements"
    return None


def _shared_bytes(parts: list[BundlePart]) -> str | None:
    stored = sorted((p.entry.shard_id, p.entry.offset, p.entry.size, p.bounds) for p in parts if p.entry.size)
    for (shard, offset, size, bounds), (shard2, offset2, _, bounds2) in zip(stored, stored[1:]):
        if shard == shard2 and offset2 < offset + size:
            return f"slices {show_bounds(bounds)} and {show_bounds(bounds2)} are stored on the same bytes"
    return None


def _parts(key: bytes, name: str, proto: EntryProto, raw: dict[bytes, EntryProto], num_shards: int):
    found = []
    for extents in proto.slices:
        if len(extents) != len(proto.shape):
            raise FormatError(f"a slice of '{name}' has {len(extents)} dims, not {len(proto.shape)}")
        bounds = tuple((s, dim if n == -1 else s + n) for (s, n), dim in zip(extents, proto.shape))
        if any(stop > dim for (_, stop), dim in zip(bounds, proto.shape)):
            raise FormatError(f"a slice of '{name}' lies outside its shape {list(proto.shape)}")
        slice_proto = raw.get(slice_key(key, extents))
        if slice_proto is None:
            raise FormatError(f"a slice of '{name}' has no entry")
        part = _entry(name, slice_proto, num_shards)
        if part.shape != tuple(stop - start for start, stop in bounds) or slice_proto.dtype != proto.dtype:
            raise FormatError(f"a slice of '{name}' disagrees with its shape or dtype")
        found.append(BundlePart(bounds, part))
    problem = tiling_problem(proto.shape, [p.bounds for p in found]) or _shared_bytes(found)
    if problem:  # as TensorFlow's reader: listed, but reading it fails
        problem = f"the slices of partitioned variable '{name}' do not tile its shape {list(proto.shape)}: {problem}"
    return tuple(found), problem


def build_entries(raw: dict[bytes, EntryProto], num_shards: int):
    """Public entries (partitioned variables once, full shape) and the slices of partitioned ones."""
    entries: dict[str, BundleEntry] = {}
    parts: dict[str, tuple[BundlePart, ...]] = {}
    keys: dict[str, bytes] = {}
    for key, proto in raw.items():
        if key.startswith(b"\x00"):  # a slice key (EncodeTensorNameSlice starts with a 0 byte)
            continue
        name = key.decode("utf-8", "backslashreplace")
        if name in keys:  # b"\xff" and the four characters "\xff": one name, two tensors
            raise NameClash(f"keys {keys[name]!r} and {key!r} both read as the variable name '{name}'")
        keys[name] = key
        if not proto.slices:
            entries[name] = _entry(name, proto, num_shards)
            continue
        found, problem = _parts(key, name, proto, raw, num_shards)
        first = found[0].entry
        dtype = DTYPE_NAMES.get(proto.dtype, f"unknown_dtype_{proto.dtype}")
        total = sum(p.entry.size for p in found)
        entries[name] = BundleEntry(name, dtype, proto.shape, first.shard_id, first.offset, total, None, True, problem)
        parts[name] = found
    return entries, parts
