"""Reads at absolute offsets of one file: pread for local files, ranged requests for fsspec URLs.

For a URL each `readinto` is one HTTP Range request for exactly those bytes (fetch.read), unless the
file is small (read whole once) or the current operation already holds them (a prefetch, an earlier
whole read). Its size comes from the folder's listing when the operation has one: no HEAD.
"""

from __future__ import annotations

import errno
import os
import stat

from ckptlib.storage import fetch, remote
from ckptlib.storage.paths import file_info, is_url, local_path


class NotARegularFile(OSError):
    """A FIFO, device, socket, or a symbolic link that leaves its folder: never opened (an OSError, so that
    callers which explain unreadable files explain this one too, by its strerror)."""

    def __init__(self, path: str, why: str = "not a regular file"):
        super().__init__(errno.EINVAL, why, path)


def irregular(path: str) -> str | None:
    """Why the local `path` is no file to open ("not a regular file", "a symbolic link that points outside
    its folder"), None when it is one; FileNotFoundError when nothing is there. Stats, never opens."""
    if os.path.islink(path):
        folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        if os.path.commonpath([folder, os.path.realpath(path)]) != folder:
            return "a symbolic link that points outside its folder"
    return None if stat.S_ISREG(os.stat(path).st_mode) else "not a regular file"


def open_regular(path: str) -> int:
    """A read-only descriptor of the local regular file `path`, or NotARegularFile (nothing opened).

    The type is checked by stat before opening: opening a FIFO blocks until a writer comes, and opening a
    device can have effects of its own. O_NONBLOCK guards the moment between the stat and the open (a FIFO
    put there is then opened without waiting and refused by the fstat). A symbolic link may point anywhere
    inside the folder that holds it (a checkpoint's own files), never out of it.
    """
    why = irregular(path)
    if why:
        raise NotARegularFile(path, why)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotARegularFile(path)
    return fd


class RangeFile:
    """A file opened for reads at absolute offsets; local reads use pread (no seek, no copy).

    Only regular files open (see open_regular): a FIFO, a device or a link out of the folder is NotARegularFile.

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
            self._fd = open_regular(local_path(path))

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


def read_bytes(path: str, limit: int) -> bytes:
    """A whole small file (one request for a URL); ValueError when it is larger than `limit` bytes (not read then).

    A local path that is not a regular file (a FIFO, a device, a link out of its folder) raises NotARegularFile.
    """
    if is_url(path):
        size = file_info(path).size
        if size > limit:
            raise ValueError(f"{path} is larger than {limit} bytes")
        return fetch.read(path, 0, size, size)
    with RangeFile(path) as f:
        size = f.size()
        if size > limit:
            raise ValueError(f"{path} is larger than {limit} bytes")
        data = bytearray(size)
        return bytes(data[: f.readinto(0, memoryview(data))])
