"""Native reader of TensorFlow V2 checkpoints (`PREFIX.index` + `PREFIX.data-*`), no TensorFlow import."""

from .chunks import DEFAULT_CHUNK_BYTES, iter_chunks
from .table import CRC32C_IMPLEMENTATION
from .tensors import BundleEntry, BundleIndex, BundlePart, read_index, read_tensor

__all__ = ["BundleEntry", "BundleIndex", "BundlePart", "CRC32C_IMPLEMENTATION", "DEFAULT_CHUNK_BYTES", "iter_chunks",
           "read_index", "read_tensor"]
