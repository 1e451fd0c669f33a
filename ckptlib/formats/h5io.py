"""HDF5 through h5py, read-only: open a file (or a byte range of one), name its dtypes, read datasets in slices."""

# h5py is imported only here and only when an HDF5 file is opened, always through a Python file object:
# opened by path, HDF5 1.10+ would lock the file, and a reader's lock makes Keras fail to rewrite a
# `.weights.h5` that ModelCheckpoint overwrites while ckptlib watches the run.

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import numpy as np

from ckptlib import errors, storage



class ByteWindow(io.RawIOBase):
    """Bytes [start, start + length) of a local file or URL as a seekable read-only file (pread or ranged reads).

    h5py and zipfile read through it: a stored `.keras` member is read in place, never extracted.
    """

    def __init__(self, path: str, start: int = 0, length: int | None = None):
        super().__init__()
        self._file = storage.RangeFile(path)
        self._start = start
        self._length = self._file.size() - start if length is None else length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self._length - self._pos))
        got = self._file.readinto(self._start + self._pos, view[:wanted]) if wanted else 0
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


@contextlib.contextmanager
def open_h5(path: str, what: str, window: tuple[int, int] | None = None):
    """The h5py.File of `path` (or of its bytes `window` = (start, length)), read-only; CkptErrors naming `what`.

    `what` begins the message: "Cannot read Keras weights 'run/model.weights.h5'". The bytes come through
    storage.RangeFile (regular local files only, or a URL), so no HDF5 file lock is ever taken.
    """
    import h5py

    try:
        source = ByteWindow(path, *(window or (0, None)))
    except FileNotFoundError:
        raise errors.NotFound(f"{what}: no such file.") from None
    except IsADirectoryError:
        raise errors.NotACheckpoint(f"{what}: a folder, not a file.") from None
    except storage.NotARegularFile as exc:
        raise errors.NotACheckpoint(f"{what}: {exc.strerror}.") from None
    except OSError as exc:
        raise errors.NotFound(f"{what}: {exc.strerror or exc}.") from None
    try:
        try:
            handle = h5py.File(source, "r")
        except OSError as exc:
            raise _open_error(what, exc) from None
        with handle:
            yield handle
    finally:
        source.close()


def _open_error(what: str, exc: OSError) -> errors.CkptError:
    text = str(exc)
    if "signature not found" in text:
        return errors.NotACheckpoint(f"{what}: not an HDF5 file (no HDF5 signature).")
    if "truncated file" in text:
        detail = text[text.index("truncated file") :].rstrip(")")
        return errors.CorruptCheckpoint(f"{what}: the file is truncated ({detail}).")
    return errors.CorruptCheckpoint(f"{what}: HDF5 cannot open it ({text.splitlines()[0][:200]}).")


def dtype_name(dataset) -> str:
    """numpy-style name of a dataset's dtype; 'bfloat16' where Keras marked it (stored as 2 opaque bytes)."""
    if dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16") and dataset.dtype.itemsize == 2:
        return "bfloat16"
    dtype = dataset.dtype
    if dtype.kind in ("O", "S", "U"):
        return "string"
    if dtype.kind == "V" or dtype.names:
        raise errors.UnsupportedFormat(f"dataset '{dataset.name}' has a compound or opaque dtype ({dtype}).")
    return dtype.name


def nbytes_of(dataset) -> int:
    """The bytes the dataset occupies in the file (after compression); 0 when never written."""
    return int(dataset.id.get_storage_size())


def read_dataset(dataset, dtype: str) -> np.ndarray:
    """The whole dataset as numpy (bfloat16 via ml_dtypes, strings as an object array of bytes)."""
    value = np.asarray(dataset[()])
    return _fix(value, dtype)


def _fix(value: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        import ml_dtypes

        return value.view(ml_dtypes.bfloat16)
    if dtype == "string":
        return np.array([v if isinstance(v, bytes) else str(v).encode() for v in value.reshape(-1)],
                        dtype=object).reshape(value.shape)
    return value


def iter_dataset(dataset, dtype: str, chunk_elements: int) -> Iterator[np.ndarray]:
    """The dataset flattened in C order as 1-D chunks of at most `chunk_elements` (one hyperslab read each).

    A chunk covers a run of indices along one axis with every later axis whole, so it is contiguous in C
    order; only that much is ever in memory.
    """
    shape = tuple(dataset.shape)
    if dtype == "string" or not shape or int(np.prod(shape)) <= chunk_elements:
        yield read_dataset(dataset, dtype).reshape(-1)
        return
    axis, inner = len(shape) - 1, 1
    while axis > 0 and inner * shape[axis] <= chunk_elements:
        inner *= shape[axis]
        axis -= 1
    step = max(1, chunk_elements // inner)
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            yield _fix(np.asarray(dataset[outer + (slice(start, start + step),)]), dtype).reshape(-1)
