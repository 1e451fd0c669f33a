"""Reads at absolute offsets of one file: pread for local files, ranged requests for fsspec URLs.

For a URL each `readinto` is one HTTP Range request for exactly those bytes (fetch.read), unless the
file is small (read whole once) or the current operation already holds them (a prefetch, an earlier
whole read). Its size comes from the folder's listing when the operation has one: no HEAD.
"""

from __future__ import annotations

import os

from ckptlib.storage import fetch, remote
from ckptlib.storage.paths import is_url, local_path


class RangeFile:
    """A file opened for reads at absolute offsets; local reads use pread (no seek, no copy).

    Example: `with RangeFile("run/model.ckpt-5.data-00000-of-00001") as f: f.readinto(128, view)`.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = None
        self._size = None
        if is_url(path):
            found = remote.info(path)
            if found is None:
                raise FileNotFoundError(2, "No such file or directory", path)
            if found.is_dir:
                raise IsADirectoryError(21, "Is a directory", path)
            self._size = found.size
        else:
            self._fd = os.open(local_path(path), os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def size(self) -> int:
        return os.fstat(self._fd).st_size if self._fd is not None else self._size

    def readinto(self, offset: int, view: memoryview) -> int:
        """Fill `view` with the bytes at `offset`; fewer only at the end of the file. Returns the count."""
        if self._size is not None:  # one ranged request (HTTP Range for object stores), or none
            data = fetch.read(self.path, offset, offset + len(view), self._size)
            view[: len(data)] = data
            return len(data)
        done = 0
        while done < len(view):
            got = _pread_into(self._fd, view[done:], offset + done)
            if not got:
                break
            done += got
        return done

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Announce the [start, end) ranges about to be read: for a URL they are fetched now, adjacent ones
        coalesced into one request, inside the current `operation()` (locally and outside one: nothing)."""
        if self._size is not None:
            fetch.prefetch(self.path, [(s, min(e, self._size)) for s, e in ranges])

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
