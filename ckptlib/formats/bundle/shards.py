"""Data shards of a bundle: opening them, bounded ranged reads, byte order and clean errors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
import numpy as np

from ckptlib.errors import CkptError, CorruptCheckpoint, IncompleteCheckpoint
from ckptlib.formats.bundle.index import BundleIndex, bundle_error
from ckptlib.formats.bundle.protos import BundleEntry
from ckptlib.storage import RangeFile


def shard_name(index: BundleIndex, entry: BundleEntry) -> str:
    return os.path.basename(index.data_path(entry.shard_id))


def crc_error(index: BundleIndex, entry: BundleEntry) -> CkptError:
    shard = shard_name(index, entry)
    return bundle_error(CorruptCheckpoint, index.prefix, f"'{entry.name}' fails its crc32c check in "
                        f"data file {shard} (the file is damaged)")  # fmt: skip


@contextlib.contextmanager
def open_shard(index: BundleIndex, entry: BundleEntry) -> Iterator[RangeFile]:
    """The entry's data shard opened for ranged reads; OSErrors become CkptErrors naming the file."""
    shard = shard_name(index, entry)
    try:
        with RangeFile(index.data_path(entry.shard_id)) as f:
            yield f
    except FileNotFoundError:
        raise bundle_error(IncompleteCheckpoint, index.prefix, f"data file {shard} is missing") from None
    except OSError as exc:
        raise bundle_error(CkptError, index.prefix, f"data file {shard} cannot be read ({exc.strerror})") from None


def check_extent(index: BundleIndex, entry: BundleEntry, f: RangeFile) -> None:
    """Fail unless the open shard holds the entry's bytes: bounds every allocation by the file."""
    have = f.size()
    if entry.offset + entry.size > have:
        shard = shard_name(index, entry)
        raise bundle_error(IncompleteCheckpoint, index.prefix, f"data file {shard} is {have} bytes, "
                           f"too short for '{entry.name}' (needs {entry.offset + entry.size})")  # fmt: skip


def read_exactly(index: BundleIndex, entry: BundleEntry, f: RangeFile, offset: int, view: memoryview) -> None:
    """Fill `view` from the shard at `offset`; a short read means the file shrank since it was measured."""
    if f.readinto(offset, view) < len(view):
        raise bundle_error(IncompleteCheckpoint, index.prefix, f"data file {shard_name(index, entry)} ended early")


def to_host_order(raw: np.ndarray, dtype: np.dtype, big_endian: bool) -> np.ndarray:
    """View stored bytes (uint8, modified in place) as `dtype`, swapped from big-endian if need be."""
    if big_endian and dtype.itemsize > 1:
        # Swap each scalar (each half of a complex) into host order, as ByteSwapTensor does.
        unit = dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize
        raw.view(f"u{unit}").byteswap(inplace=True)
    return raw.view(dtype)
