"""Read MNIST-style IDX files (gzip-compressed or raw) into numpy arrays, checking every header field.

The IDX format (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS FOR THE MNIST DATABASE"): a 4-byte
big-endian magic number whose third byte is the element type (0x08 = unsigned byte) and whose fourth
byte is the number of dimensions, then one big-endian uint32 per dimension, then the elements in C
order with no padding. MNIST uses magic 2051 (0x00000803: uint8, 3 dims N x rows x cols) for images
and 2049 (0x00000801: uint8, 1 dim N) for labels.

Example::

    from ckptlib.evaluate.mnist_idx import find_split, load_idx_pair
    images, labels = load_idx_pair(*find_split("/data/mnist", "t10k"))
    images.shape, labels.shape   # ((10000, 28, 28), (10000,))

Whether a file is gzip-compressed is decided by its first two bytes, not by its name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ckptlib.errors import CkptError, CorruptDataset, NotFound

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGE_SIDE = 28

_GZIP_MAGIC = b"\x1f\x8b"
# Names seen in the wild: the canonical `t10k-images-idx3-ubyte[.gz]` and the dotted
# `t10k-images.idx3-ubyte[.gz]` that some mirrors and Kaggle uploads use. Raw files first: they load
# faster and a folder holding both usually holds the raw file because someone unpacked the gz.
_NAME_PATTERNS = (
    "{split}-{kind}-idx{dims}-ubyte",
    "{split}-{kind}.idx{dims}-ubyte",
    "{split}-{kind}-idx{dims}-ubyte.gz",
    "{split}-{kind}.idx{dims}-ubyte.gz",
)
SPLITS = ("train", "t10k")


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it starts with the gzip magic."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise NotFound(f"IDX file '{path}' does not exist.") from None
    except IsADirectoryError:
        raise CkptError(f"IDX file '{path}' is a directory, not a file.") from None
    except OSError as exc:
        raise CkptError(f"Cannot read IDX file '{path}': {exc.strerror or exc}.") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise CorruptDataset(f"Cannot read IDX file '{path}': the gzip stream is truncated.") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise CorruptDataset(f"Cannot read IDX file '{path}': corrupt gzip data ({exc}).") from None


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read one uint8 IDX file and return its elements with the shape its header declares.

    Raises NotFound if the file does not exist, CkptError if it is not a valid IDX file with
    magic number `expected_magic` (2051 images, 2049 labels) or its size disagrees with its header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise CorruptDataset(
            f"IDX file '{path}' is too short ({len(data)} bytes) to hold an IDX header.")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise CorruptDataset(
            f"IDX file '{path}' has magic number {magic} (0x{magic:08x}), "
            f"expected {expected_magic} (0x{expected_magic:08x}).")
    ndims = data[3]  # the magic's last byte; its third byte (0x08 = uint8) is fixed by the magic
    header_size = 4 + 4 * ndims
    if len(data) < header_size:
        raise CorruptDataset(
            f"IDX file '{path}' is truncated: {len(data)} bytes, but its header alone needs "
            f"{header_size} bytes for {ndims} dimensions.")
    dims = struct.unpack(f">{ndims}I", data[4:header_size])
    expected_size = header_size + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected_size:
        problem = "truncated" if len(data) < expected_size else "longer than its header says"
        raise CorruptDataset(
            f"IDX file '{path}' is {problem}: {len(data)} bytes (uncompressed), header with "
            f"dimensions {'x'.join(map(str, dims))} needs {expected_size} bytes.")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def load_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST images file and its labels file: (uint8 [N, 28, 28], uint8 [N]).

    Raises NotFound if a file is missing, CkptError if either is invalid, the images are not
    28x28 or the two files hold different numbers of examples.
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise CorruptDataset(
            f"IDX file '{images_path}' holds {images.shape[1]}x{images.shape[2]} images, "
            f"expected {IMAGE_SIDE}x{IMAGE_SIDE}.")
    if images.shape[0] != labels.shape[0]:
        raise CorruptDataset(
            f"IDX files '{images_path}' and '{labels_path}' disagree: "
            f"{images.shape[0]} images but {labels.shape[0]} labels.")
    return images, labels


def _find_one(folder: Path, split: str, kind: str, dims: int) -> Path:
    names = [pattern.format(split=split, kind=kind, dims=dims) for pattern in _NAME_PATTERNS]
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise NotFound(
        f"MNIST folder '{folder}' has no {split} {kind} file (looked for {', '.join(names)}).")


def find_split(folder: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Paths of the images and labels files of `split` ("train" or "t10k") inside `folder`.

    Accepts `{split}-images-idx3-ubyte`, `{split}-images.idx3-ubyte`, each with or without `.gz`
    (likewise `-labels-idx1-ubyte`). Raises NotFound naming the folder and the names tried.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"MNIST folder '{folder}' does not exist or is not a folder.")
    return _find_one(folder, split, "images", 3), _find_one(folder, split, "labels", 1)
