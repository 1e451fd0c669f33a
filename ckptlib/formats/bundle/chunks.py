"""Stream one tensor as consecutive flat chunks through fixed-size buffers, crc-checked as they pass."""

# Why not a memory map: peak RSS (what /usr/bin/time -f %M reports) counts every page of a mapped
# file that was touched, so mapping a 512 MB tensor costs 512 MB of RSS however it is consumed.
# Here each chunk is read with pread (readinto at an offset) into one reusable buffer. The tensor's
# stored crc32c (BundleEntryProto.crc32c, tensorflow/core/util/tensor_bundle/tensor_bundle.cc) is
# extended over the same bytes, in order, and compared after the last chunk: a damaged tensor raises
# CorruptCheckpoint from the iterator's final step, so a caller who lets that error propagate never
# returns statistics of it. Reading the next chunk in a second thread was measured (benchmarks/
# README.md) and dropped: from the page cache pread runs at several GB/s, and the thread handoffs
# cost more than the overlap saved.

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

from ckptlib.formats.bundle.assemble import Fill, partitioned_reader
from ckptlib.formats.bundle.index import BundleIndex
from ckptlib.formats.bundle.protos import BundleEntry
from ckptlib.formats.bundle.shards import check_extent, crc_error, open_shard, read_exactly, to_host_order
from ckptlib.formats.bundle.table import crc32c
from ckptlib.formats.bundle.tensors import check_size, read_flat, variable_entry

DEFAULT_CHUNK_BYTES = 4 << 20  # the buffer of one open tensor


def iter_chunks(index: BundleIndex, name: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The tensor `name` flattened in C order, as consecutive 1-D chunks of about `chunk_bytes`.

    Each chunk is a view of a reused buffer, valid until the next one is requested (copy it to
    keep it). A tensor of at most `chunk_bytes` (and any string tensor) comes whole, as one chunk.
    A partitioned variable is reassembled chunk by chunk, whatever axis its slices cut: each chunk
    is a box of whole rows of one axis (slices.py), at most `chunk_bytes` unless a single element is
    larger. Any rank streams, numpy's limit of 64 dimensions included (the chunks are flat).
    Missing variables, unreadable dtypes and short files raise here; a crc32c mismatch raises
    CorruptCheckpoint after the last chunk. Example:
    `sum(float(c.sum()) for c in iter_chunks(read_index("run/model.ckpt-5"), "w"))`.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, not {chunk_bytes}")
    entry = variable_entry(index, name)
    dtype = check_size(index, entry)
    if dtype is None or entry.size <= chunk_bytes:
        return iter((read_flat(index, name),))
    stack = contextlib.ExitStack()
    with stack:  # closes what was opened if planning fails; on success the generator owns it
        plan = partitioned_reader if entry.is_partitioned else _plain
        fill, count, size, finish = plan(index, entry, dtype, chunk_bytes, stack)
        return _run(fill, count, size, finish, stack.pop_all())


def _plain(index: BundleIndex, entry: BundleEntry, dtype: np.dtype, chunk_bytes: int,
           stack: contextlib.ExitStack) -> tuple[Fill, int, int, Callable[[], None]]:
    f = stack.enter_context(open_shard(index, entry))
    check_extent(index, entry, f)
    step = max(1, chunk_bytes // dtype.itemsize) * dtype.itemsize  # whole elements per chunk
    crc = [0]  # extended by each fill, in order

    def fill(k: int, buf: np.ndarray) -> np.ndarray:
        start = k * step
        raw = buf[: min(step, entry.size - start)]
        read_exactly(index, entry, f, entry.offset + start, memoryview(raw))
        crc[0] = crc32c(raw, crc[0])
        return to_host_order(raw, dtype, index.big_endian)

    def finish() -> None:
        if crc[0] != entry.crc32c:
            raise crc_error(index, entry)

    return fill, -(-entry.size // step), step, finish


def _run(fill: Fill, count: int, size: int, finish: Callable[[], None],
         stack: contextlib.ExitStack) -> Iterator[np.ndarray]:
    with stack:  # the shard files stay open until the last chunk, or until the caller stops early
        buf = _take_buffer(size)
        for k in range(count):
            yield fill(k, buf)
        finish()
        # Back to the pool only now, when the caller has asked past the last chunk (which then stops being
        # valid, as every chunk does when the next is requested); a stream closed early keeps its buffer.
        _give_back(buf)


# Buffers of finished streams, reused by the next ones. A fresh 4 MB buffer is ~1000 page faults, and
# glibc hands freed ones back to the kernel: a diff of 40 tensors spent ~20% of its time faulting them
# in again (benchmarks/README.md). At most _POOL_SIZE are kept (a trend streams 3 tensors at once).
# list.append and list.pop are atomic, so threads (Streamlit sessions) never share a buffer.
_POOL: list[np.ndarray] = []
_POOL_SIZE = 4


def _take_buffer(size: int) -> np.ndarray:
    try:
        buf = _POOL.pop()
    except IndexError:
        return _aligned_buffer(size)
    if buf.size != size:  # another chunk size: allocate, and let the odd one go
        return _aligned_buffer(size)
    return buf


def _give_back(buf: np.ndarray) -> None:
    if len(_POOL) < _POOL_SIZE:
        _POOL.append(buf)


def _aligned_buffer(size: int, align: int = 64) -> np.ndarray:
    # numpy aligns to 16 bytes; vector loads that straddle cache lines slowed every pass over a chunk here.
    raw = np.empty(size + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + size]
