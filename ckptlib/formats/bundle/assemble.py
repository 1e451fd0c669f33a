"""Assemble a partitioned variable from its slices, one box of the full tensor at a time (see slices.py)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np

from ckptlib.errors import UnsupportedFormat
from ckptlib.formats.bundle.index import BundleIndex, bundle_error
from ckptlib.formats.bundle.protos import BundleEntry
from ckptlib.formats.bundle.shards import check_extent, crc_error, open_shard, read_exactly, to_host_order
from ckptlib.formats.bundle.slices import merge_dims, plan_boxes
from ckptlib.formats.bundle.table import crc32c

Fill = Callable[[int, np.ndarray], np.ndarray]  # fill(k, buffer): assemble box k into it, return its flat values
NUMPY_MAX_DIMS = 64


def partitioned_reader(index: BundleIndex, entry: BundleEntry, dtype: np.dtype, chunk_bytes: int,
                       stack: contextlib.ExitStack) -> tuple[Fill, int, int, Callable[[], None]]:
    """(fill, number of boxes, bytes of the largest, finish) for the non-empty numeric partitioned `entry`.

    Boxes must be filled in order, each once; `finish()` then checks every slice's crc32c and that each
    was read to its end. The shard files are opened on `stack` (and checked to hold every slice).
    """
    parts = index.parts[entry.name]
    files = {}
    for part in parts:
        shard = part.entry.shard_id
        if shard not in files:
            files[shard] = stack.enter_context(open_shard(index, part.entry))
        check_extent(index, part.entry, files[shard])
    shape, bounds = merge_dims(entry.shape, [part.bounds for part in parts])
    if len(shape) > NUMPY_MAX_DIMS:
        raise bundle_error(UnsupportedFormat, index.prefix, f"partitioned variable '{entry.name}' has "
                           f"{len(shape)} dimensions its slices cut, more than numpy's {NUMPY_MAX_DIMS}")  # fmt: skip
    plan, largest = plan_boxes(shape, dtype.itemsize, chunk_bytes)
    axis = plan.axis
    # Slices by their first row, so that a box of rows [lo, hi) stops looking at the first slice past hi.
    order = sorted(range(len(parts)), key=lambda k: bounds[k][0][0])
    read = [0] * len(parts)  # bytes of each slice read so far: each is read front to back
    crcs = [0] * len(parts)
    scratch = [np.empty(0, dtype=np.uint8)]  # for slices that cover part of a box's later axes

    def read_next(k: int, target: np.ndarray) -> np.ndarray:
        part = parts[k].entry
        read_exactly(index, part, files[part.shard_id], part.offset + read[k], memoryview(target))
        read[k] += target.size
        crcs[k] = crc32c(target, crcs[k])
        return to_host_order(target, dtype, index.big_endian)

    def fill(k: int, buf: np.ndarray) -> np.ndarray:
        prefix, lo, hi = plan.box(k)
        later = shape[axis + 1 :]
        row_bytes = math.prod(later) * dtype.itemsize
        out = buf[: (hi - lo) * row_bytes]
        values = out.view(dtype).reshape((hi - lo,) + later)
        last_row = prefix[0] if axis else hi - 1
        for j in order:
            box = bounds[j]
            if box[0][0] > last_row:
                break
            if not all(start <= i < stop for i, (start, stop) in zip(prefix, box)):
                continue
            start, stop = max(lo, box[axis][0]), min(hi, box[axis][1])
            if start >= stop:
                continue
            inner = tuple(b - a for a, b in box[axis + 1 :])
            if inner == later:  # the slice holds whole rows here: its bytes go straight into place
                read_next(j, out[(start - lo) * row_bytes : (stop - lo) * row_bytes])
                continue
            size = (stop - start) * math.prod(inner) * dtype.itemsize
            if scratch[0].size < size:
                scratch[0] = np.empty(size, dtype=np.uint8)
            got = read_next(j, scratch[0][:size]).reshape((stop - start,) + inner)
            values[(slice(start - lo, stop - lo),) + tuple(slice(a, b) for a, b in box[axis + 1 :])] = got
        return values.reshape(-1)

    def finish() -> None:
        for k, part in enumerate(parts):
            if read[k] != part.entry.size or crcs[k] != part.entry.crc32c:
                raise crc_error(index, part.entry)

    return fill, plan.count, largest, finish


def read_partitioned(index: BundleIndex, entry: BundleEntry, dtype: np.dtype) -> np.ndarray:
    """The whole non-empty numeric partitioned tensor, flat: one box, allocated once at its real size."""
    with contextlib.ExitStack() as stack:
        fill, count, size, finish = partitioned_reader(index, entry, dtype, entry.size, stack)
        assert count == 1, count  # a box of entry.size bytes holds the whole tensor
        values = fill(0, np.empty(size, dtype=np.uint8))
        finish()
    return values
