"""Paths and listings for local files and fsspec URLs: join, stat, list, walk, read a small file."""

# Local paths are the fast path: plain os calls, and fsspec is never imported for them. A URL
# ("scheme://...") goes through fsspec when it is installed (`pip install ckptlib[remote]` plus
# the backend, e.g. gcsfs or s3fs); tensors are then fetched with ranged reads of their bytes only.
# Paths handed back (joins, walks) keep the caller's spelling, scheme included.

from __future__ import annotations

import datetime
import os
import posixpath
from collections.abc import Iterator

from ckptlib import errors


def is_url(path: str) -> bool:
    """Whether `path` names a remote (fsspec) location rather than a local file."""
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def url_filesystem(url: str):
    """(filesystem, path inside it) of a URL; CkptError when fsspec or the backend is missing."""
    try:
        import fsspec
    except ImportError:
        hint = "pip install 'ckptlib[remote]'"
        raise errors.CkptError(f"Cannot open '{url}': remote paths need fsspec ({hint}).") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # unknown protocol, or its backend package is missing
        raise errors.CkptError(f"Cannot open '{url}': {exc}".replace("\n", " ")) from None


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
    fs, inner = url_filesystem(path)
    return fs.isdir(inner)


def isfile(path: str) -> bool:
    if not is_url(path):
        return os.path.isfile(local_path(path))
    fs, inner = url_filesystem(path)
    return fs.isfile(inner)


def exists(path: str) -> bool:
    if not is_url(path):
        return os.path.exists(local_path(path))
    fs, inner = url_filesystem(path)
    return fs.exists(inner)


def getsize(path: str) -> int:
    """Size in bytes; FileNotFoundError (an OSError) when it is missing."""
    if not is_url(path):
        return os.path.getsize(local_path(path))
    fs, inner = url_filesystem(path)
    return int(fs.size(inner))


def getmtime(path: str) -> float | None:
    """Modification time in unix seconds; None when a remote store does not tell."""
    if not is_url(path):
        return os.path.getmtime(local_path(path))
    fs, inner = url_filesystem(path)
    try:
        return _seconds(fs.modified(inner))
    except NotImplementedError:  # not every backend implements modified(): look in info()
        info = fs.info(inner)
    for key in ("mtime", "LastModified", "updated", "created", "last_modified"):
        if info.get(key) is not None:
            return _seconds(info[key])
    return None


def _seconds(value) -> float | None:
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    try:  # ISO 8601 strings (GCS "updated")
        return _seconds(datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def listdir(path: str) -> list[tuple[str, bool]]:
    """(name, is_folder) of each entry of a folder, sorted by name."""
    if not is_url(path):
        with os.scandir(local_path(path)) as listing:
            return sorted((item.name, item.is_dir()) for item in listing)
    fs, inner = url_filesystem(path)
    found = []
    for info in fs.ls(inner, detail=True):
        name = posixpath.basename(info["name"].rstrip("/"))
        if name and info["name"].rstrip("/") != inner.rstrip("/"):  # some stores list the folder itself
            found.append((name, info["type"] == "directory"))
    return sorted(found)


def walk(root: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """Like os.walk (top-down; prune by editing the folder list in place), for paths and URLs."""
    if not is_url(root):
        yield from os.walk(local_path(root))
        return
    entries = listdir(root)
    folders = [name for name, is_dir in entries if is_dir]
    yield root, folders, [name for name, is_dir in entries if not is_dir]
    for name in folders:
        yield from walk(join(root, name))


def read_bytes(path: str, limit: int) -> bytes:
    """A whole small file; ValueError when it is larger than `limit` bytes (not read then)."""
    if getsize(path) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    if not is_url(path):
        with open(local_path(path), "rb") as handle:
            return handle.read()
    fs, inner = url_filesystem(path)
    return fs.cat_file(inner)
