"""Reads at absolute offsets of one file: pread for local files, ranged requests for fsspec URLs."""

from __future__ import annotations

import os

from ckptlib.storage.paths import is_url, local_path, url_filesystem


class RangeFile:
    """A file opened for reads at absolute offsets; local reads use pread (no seek, no copy).

    Example: `with RangeFile("run/model.ckpt-5.data-00000-of-00001") as f: f.readinto(128, view)`.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = None
        self._fs = None
        if is_url(path):
            self._fs, self._inner = url_filesystem(path)
            if not self._fs.isfile(self._inner):
                raise FileNotFoundError(2, "No such file or directory", path)
        else:
            self._fd = os.open(local_path(path), os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def size(self) -> int:
        return os.fstat(self._fd).st_size if self._fd is not None else int(self._fs.size(self._inner))

    def readinto(self, offset: int, view: memoryview) -> int:
        """Fill `view` with the bytes at `offset`; fewer only at the end of the file. Returns the count."""
        if self._fs is not None:  # one ranged request (HTTP Range for object stores)
            data = self._fs.cat_file(self._inner, start=offset, end=offset + len(view))
            view[: len(data)] = data
            return len(data)
        done = 0
        while done < len(view):
            got = _pread_into(self._fd, view[done:], offset + done)
            if not got:
                break
            done += got
        return done

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RangeFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):  # straight into the caller's buffer, releasing the GIL
        return os.preadv(fd, [view], offset)
    data = os.pread(fd, len(view), offset)  # pragma: no cover - platforms without preadv
    view[: len(data)] = data
    return len(data)
