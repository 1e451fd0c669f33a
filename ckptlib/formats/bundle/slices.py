"""Geometry of a partitioned variable: fewer dimensions for the same slices, and the boxes it streams in."""

# A chunk of the full tensor is a box: fixed indices on the axes before `axis`, a run of rows [lo, hi) on
# `axis`, everything on the axes after it. Its intersection with a slice is a box whose later axes are the
# slice's whole extent there, so it is one contiguous byte range of the slice (stored in its own C
# order); and since the boxes follow each other in the full tensor's C order, which restricted to a
# slice is the slice's own C order, each slice is read front to back across the chunks (its crc32c is
# extended as the bytes pass, as for an unpartitioned tensor). Row partitions give axis 0; a column
# partition whose rows exceed a chunk gives axis 1, and so on: memory stays one chunk whatever the axis.

from __future__ import annotations

import math
from dataclasses import dataclass

from ckptlib.formats.bundle.entries import Bounds


def merge_dims(shape: tuple[int, ...], slices: list[Bounds]) -> tuple[tuple[int, ...], list[Bounds]]:
    """The same tensor and slices with every axis that no slice cuts folded into the one before it.

    (4, 3, 5) cut on axis 0 only is (4, 15): [a:b, 0:3, 0:5] is [a*15:b*15]. Fewer axes means longer
    contiguous runs, and a rank over numpy's 64 from TensorFlow (mostly size-1 axes) comes back in range.
    """
    if not shape:
        return shape, slices
    dims = [shape[0]]
    merged = [[b[0]] for b in slices]
    for axis in range(1, len(shape)):
        size = shape[axis]
        if all(b[axis] == (0, size) for b in slices):
            dims[-1] *= size
            for bounds in merged:
                start, stop = bounds[-1]
                bounds[-1] = (start * size, stop * size)
        else:
            dims.append(size)
            for bounds, b in zip(merged, slices):
                bounds.append(b[axis])
    return tuple(dims), [tuple(b) for b in merged]


@dataclass(frozen=True)
class BoxPlan:
    """How a tensor of `shape` (no empty axis) is cut into boxes of at most about `chunk_bytes`."""

    shape: tuple[int, ...]
    axis: int
    rows: int  # rows of `axis` per box (the last box of each run may have fewer)

    @property
    def per_run(self) -> int:
        return -(-self.shape[self.axis] // self.rows)

    @property
    def count(self) -> int:
        return math.prod(self.shape[: self.axis]) * self.per_run

    def box(self, k: int) -> tuple[tuple[int, ...], int, int]:
        """Box k in C order: (indices on the axes before `axis`, lo, hi) of its rows on `axis`."""
        run, step = divmod(k, self.per_run)
        prefix = []
        for size in reversed(self.shape[: self.axis]):
            run, index = divmod(run, size)
            prefix.append(index)
        lo = step * self.rows
        return tuple(reversed(prefix)), lo, min(self.shape[self.axis], lo + self.rows)


def plan_boxes(shape: tuple[int, ...], itemsize: int, chunk_bytes: int) -> tuple[BoxPlan, int]:
    """(the plan, bytes of its largest box): the earliest axis whose single row fits in `chunk_bytes`."""
    axis, unit = len(shape) - 1, itemsize  # unit: the bytes of one row of `axis`
    while axis > 0 and unit * shape[axis] <= chunk_bytes:
        unit *= shape[axis]
        axis -= 1
    rows = min(shape[axis], max(1, chunk_bytes // unit))
    return BoxPlan(shape, axis, rows), rows * unit
