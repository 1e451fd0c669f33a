"""Native reader of TensorFlow V2 checkpoints (`PREFIX.index` + `PREFIX.data-*`), no TensorFlow import."""

from ckptlib.formats.bundle.chunks import DEFAULT_CHUNK_BYTES, iter_chunks
from ckptlib.formats.bundle.index import BundleIndex, read_index
from ckptlib.formats.bundle.protos import BundleEntry, BundlePart
from ckptlib.formats.bundle.table import CRC32C_IMPLEMENTATION
from ckptlib.formats.bundle.tensors import read_flat, read_tensor

__all__ = ["BundleEntry", "BundleIndex", "BundlePart", "CRC32C_IMPLEMENTATION", "DEFAULT_CHUNK_BYTES", "iter_chunks",
           "read_flat", "read_index", "read_tensor"]
