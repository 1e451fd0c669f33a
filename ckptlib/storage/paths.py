"""Paths and listings for local files and fsspec URLs: join, stat, list, walk (reads are rangefile.py's)."""

# Local paths are the fast path: plain os calls, and fsspec is never imported for them. A URL
# ("scheme://...") goes through fsspec when it is installed (`pip install ckptlib[remote]` plus
# the backend, e.g. gcsfs or s3fs): remote.py lists (sizes, times and existence come from folder
# listings, remembered for one operation: operation.py), fetch.py reads exactly the bytes asked for
# (through rangefile.py: ranged reads, whole small files), and errors.py turns the store's failures
# into one-line errors. Paths handed back (joins, walks) keep the caller's spelling, scheme included.

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator

from ckptlib.storage import fetch, remote
from ckptlib.storage.remote import url_filesystem  # noqa: F401 - re-exported (live/listing.py lists with it)


def is_url(path: str) -> bool:
    """Whether `path` names a remote (fsspec) location rather than a local file."""
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def absolute(path: str) -> str:
    """An absolute local path (~ expanded); URLs unchanged but for a trailing '/'."""
    path = str(path)
    if is_url(path):
        return path.rstrip("/") if not path.endswith("://") else path
    return os.path.abspath(os.path.expanduser(local_path(path)))


def join(base: str, *names: str) -> str:
    """posixpath.join for URLs (no normalisation: it would fold the '//' after the scheme)."""
    return posixpath.join(base, *names) if is_url(base) else os.path.join(base, *names)


def normalize(path: str) -> str:
    """Collapse '.' and '..' (for URLs in the part after the scheme, keeping its '//')."""
    if not is_url(path):
        return os.path.normpath(path)
    scheme, rest = path.split("://", 1)
    lead = "/" if rest.startswith("/") else ""
    return f"{scheme}://{lead}{posixpath.normpath(rest).lstrip('/')}"


def relative(path: str, start: str) -> str:
    """`path` relative to the folder `start` that contains it ('.' for start itself)."""
    if not is_url(path):
        return os.path.relpath(path, start)
    return path[len(start) :].strip("/") or "."


def isabs(path: str) -> bool:
    return is_url(path) or os.path.isabs(path)


def isdir(path: str) -> bool:
    if not is_url(path):
        return os.path.isdir(local_path(path))
    found = remote.known(path)
    if found is not False:
        return found is not None and found.is_dir
    try:  # a listing, not a HEAD: the folder's contents are what the caller wants next
        return remote.list_folder(path) is not None
    except FileNotFoundError:
        return False


def isfile(path: str) -> bool:
    if not is_url(path):
        return os.path.isfile(local_path(path))
    found = remote.info(path)
    return found is not None and not found.is_dir


def exists(path: str) -> bool:
    if not is_url(path):
        return os.path.exists(local_path(path))
    return remote.info(path) is not None


def file_info(path: str) -> remote.Entry:
    found = remote.info(path)
    if found is None:
        raise FileNotFoundError(2, "No such file or directory", path)
    return found


def getsize(path: str) -> int:
    """Size in bytes; FileNotFoundError (an OSError) when it is missing."""
    if not is_url(path):
        return os.path.getsize(local_path(path))
    return file_info(path).size


def getmtime(path: str) -> float | None:
    """Modification time in unix seconds; None when a remote store does not tell."""
    if not is_url(path):
        return os.path.getmtime(local_path(path))
    return file_info(path).mtime


def listdir(path: str, prefetch: str | None = None) -> list[tuple[str, bool]]:
    """(name, is_folder) of each entry of a folder, sorted by name.

    `prefetch=".index"`: for a URL inside an operation, also fetch every small file whose name ends so
    now, concurrently, since the caller will read them all (load_history reads every index).
    """
    if not is_url(path):
        with os.scandir(local_path(path)) as listing:
            return sorted((item.name, item.is_dir()) for item in listing)
    entries = remote.list_folder(path)
    if entries is None:
        raise NotADirectoryError(20, "Not a directory", path)
    if prefetch:
        fetch.prefetch_files([join(path, n) for n, e in entries.items() if not e.is_dir and n.endswith(prefetch)])
    return sorted((name, entry.is_dir) for name, entry in entries.items())


def scan(path: str) -> list[tuple[str, bool, int, float | None]]:
    """(name, is_folder, size, mtime) of each entry of a folder, sorted by name: one listing, no stat per
    file for a URL (the listing carries sizes and times); folders have size 0."""
    if not is_url(path):
        found = []
        with os.scandir(local_path(path)) as listing:
            for item in listing:
                try:
                    info = item.stat()
                except FileNotFoundError:  # deleted between the listing and its stat
                    continue
                is_dir = item.is_dir()
                found.append((item.name, is_dir, 0 if is_dir else info.st_size, info.st_mtime_ns / 1e9))
        return sorted(found)
    entries = remote.list_folder(path)
    if entries is None:
        raise NotADirectoryError(20, "Not a directory", path)
    return sorted((name, e.is_dir, e.size, e.mtime) for name, e in entries.items())


def walk(root: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """Like os.walk (top-down; prune by editing the folder list in place), for paths and URLs.

    A URL is listed once, recursively (remote.tree), whatever the depth: no request per folder.
    """
    if not is_url(root):
        yield from os.walk(local_path(root))
        return
    folders = remote.tree(root)

    def visit(folder: str, key: str):
        entries = folders.get(key, {})
        subdirs = sorted(name for name, entry in entries.items() if entry.is_dir)
        yield folder, subdirs, sorted(name for name, entry in entries.items() if not entry.is_dir)
        for name in subdirs:
            yield from visit(join(folder, name), f"{key}/{name}")

    yield from visit(root, root.rstrip("/"))
