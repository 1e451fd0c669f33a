"""fsspec URLs listed exactly once: the filesystem of a URL, folder listings, object info, a recursive tree.

Within an operation (operation.py) a folder is listed once and every size, mtime and existence question
about its entries is answered from that listing; fsspec's own listings cache is switched off, so outside
an operation each call asks the store afresh. Every call into fsspec runs inside errors.store_errors.
"""

from __future__ import annotations

import datetime
import posixpath
from dataclasses import dataclass

from ckptlib import errors
from ckptlib.storage.errors import store_errors
from ckptlib.storage.operation import current

# Storage options for every URL: fsspec's listings cache off (an operation caches instead, and only for
# its own duration); s3fs: no read-ahead cache on file objects.
_OPTIONS = {"use_listings_cache": False}
_PROTOCOL_OPTIONS = {"s3": {"default_cache_type": "none", "default_fill_cache": False},
                     "s3a": {"default_cache_type": "none", "default_fill_cache": False}}
_TIME_KEYS = ("mtime", "LastModified", "updated", "last_modified", "created")


@dataclass(frozen=True)
class Entry:
    """What a listing says about one name in a folder."""

    name: str
    is_dir: bool
    size: int
    mtime: float | None


def url_filesystem(url: str):
    """(filesystem, path inside it) of a URL; CkptError when fsspec or the backend is missing."""
    try:
        import fsspec
    except ImportError:
        hint = "pip install 'ckptlib[remote]'"
        raise errors.CkptError(f"Cannot open '{url}': remote paths need fsspec ({hint}).") from None
    protocol = url.split("://", 1)[0].lower()
    options = {**_OPTIONS, **_PROTOCOL_OPTIONS.get(protocol, {})}
    try:
        with store_errors(url):
            try:
                return fsspec.core.url_to_fs(url, **options)
            except TypeError:  # a backend that takes no such options
                return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # unknown protocol, or its backend package is missing
        raise errors.CkptError(f"Cannot open '{url}': {exc}".replace("\n", " ")) from None


def url_key(url: str) -> str:
    return url.rstrip("/") if not url.endswith("://") else url


def _parent(key: str) -> tuple[str, str] | None:
    if "/" not in key.split("://", 1)[1].strip("/"):
        return None  # a bucket: no parent folder to list
    folder, name = key.rsplit("/", 1)
    return folder, name


def _seconds(value) -> float | None:
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:  # ISO 8601 strings (GCS "updated")
            return _seconds(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _entry(name: str, info: dict) -> Entry:
    mtime = next((t for t in (_seconds(info.get(k)) for k in _TIME_KEYS) if t is not None), None)
    is_dir = info.get("type") == "directory"
    return Entry(name, is_dir, 0 if is_dir else int(info.get("size") or 0), None if is_dir else mtime)


def _remember_listing(memory, key: str, entries: dict[str, Entry] | None) -> None:
    if memory is None:
        return
    memory.listings[key] = entries
    for name, entry in (entries or {}).items():
        memory.infos[f"{key}/{name}"] = entry


def list_folder(url: str) -> dict[str, Entry] | None:
    """The entries of folder `url` by name; None when `url` is a file; FileNotFoundError when nothing is there."""
    key, memory = url_key(url), current()
    if memory is not None and key in memory.listings:
        return memory.listings[key]
    if memory is not None and key in memory.infos and not getattr(memory.infos[key], "is_dir", False):
        if memory.infos[key] is None:
            raise FileNotFoundError(2, "No such file or directory", url)
        return None  # a file, known from its folder's listing
    fs, inner = url_filesystem(url)
    own = inner.rstrip("/")
    try:
        with store_errors(url):
            infos = fs.ls(inner, detail=True)
    except FileNotFoundError:
        if memory is not None:
            memory.infos[key] = None
        raise
    entries: dict[str, Entry] | None = {}
    for info in infos:
        full = str(info["name"]).rstrip("/")
        if full == own:  # the path itself: a file (or a folder marker some stores list)
            if info.get("type") != "directory" and len(infos) == 1:
                entries = None
                if memory is not None:
                    memory.infos[key] = _entry(posixpath.basename(own), info)
                break
            continue
        name = posixpath.basename(full)
        if name:
            entries[name] = _entry(name, info)
    _remember_listing(memory, key, entries)
    return entries


def known(url: str) -> Entry | None | bool:
    """What the operation already knows of `url` without asking the store: an Entry, None (missing) or False."""
    memory = current()
    if memory is None:
        return False
    key = url_key(url)
    if key in memory.infos:
        return memory.infos[key]
    if memory.listings.get(key) is not None:
        return Entry(posixpath.basename(key), True, 0, None)
    parent = _parent(key)
    if parent and memory.listings.get(parent[0]) is not None:
        return memory.listings[parent[0]].get(parent[1])  # a full listing: absent means missing
    return False


def info(url: str) -> Entry | None:
    """What the store says about `url` (None: nothing there), from the operation's listings when it can."""
    found = known(url)
    if found is not False:
        return found
    fs, inner = url_filesystem(url)
    try:
        with store_errors(url):
            found = _entry(posixpath.basename(url_key(url)), fs.info(inner))
    except FileNotFoundError:
        found = None
    if (memory := current()) is not None:
        memory.infos[url_key(url)] = found
    return found


def tree(root: str) -> dict[str, dict[str, Entry]]:
    """Every folder under `root` (its key, as `root` spells it) → its entries, from one recursive listing.

    One `find` (for S3: ListObjectsV2 without a delimiter, 1000 keys a request) however deep the tree;
    the folders are those the object names imply. Each folder's listing is remembered by the operation.
    """
    root_key, memory = url_key(root), current()
    fs, inner = url_filesystem(root)
    own = inner.rstrip("/")
    with store_errors(root):
        found = fs.find(inner, detail=True, withdirs=True)
    folders: dict[str, dict[str, Entry]] = {root_key: {}}
    for full, item in sorted(found.items()):
        full = str(full).rstrip("/")
        if not full.startswith(own + "/"):
            continue
        parts = full[len(own) + 1 :].split("/")
        folder = root_key
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            entries = folders.setdefault(folder, {})
            if last and item.get("type") != "directory":
                entries[part] = _entry(part, item)
            else:
                entries.setdefault(part, Entry(part, True, 0, None))
            folder = f"{folder}/{part}"
            if not last or item.get("type") == "directory":
                folders.setdefault(folder, {})
    for key, entries in folders.items():
        _remember_listing(memory, key, entries)
    return folders
