"""A checkpoint's identity: the sha256 of its .index (content) and the sizes and mtimes of its files (on disk)."""

from __future__ import annotations

import hashlib
import os

from ckptlib import storage

_BLOCK = 1 << 20


def checkpoint_identity(prefix: str) -> str | None:
    """sha256 hex of PREFIX.index (it names every tensor's shard, offset and crc32c); None when it is gone.

    Streamed in 1 MB blocks so a huge or hostile index costs time, never memory.
    """
    path = prefix + ".index"
    if not storage.isfile(path):
        return None
    digest = hashlib.sha256()
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    try:
        with storage.RangeFile(path) as f:
            offset = 0
            while True:
                got = f.readinto(offset, view)
                if not got:
                    break
                digest.update(view[:got])
                offset += got
    except OSError:
        return None
    return digest.hexdigest()


def _belongs(name: str, base: str) -> bool:
    """Whether a file named `name` is part of the checkpoint `base` names: a bundle's files (`base.*`), a single
    file (`model.keras`, `frozen.pb`), or a sharded Keras `x.weights.json` with its `x_00000.weights.h5` shards."""
    if name.startswith(base + ".") or name == base:
        return True
    stem = base[: -len(".weights.json")] if base.endswith(".weights.json") else None
    return stem is not None and name.startswith(stem + "_") and name.endswith(".weights.h5")


def file_signature(prefix: str) -> tuple[tuple[str, int, int], ...]:
    """(file name, size, mtime in ns) of every file of the checkpoint (index, data shards, .meta; or the one
    file of a single-file format), sorted.

    With the index hash this catches a data shard rewritten in place under an unchanged index, and it is
    the whole identity of formats without an index (a rewritten .keras is a new key).
    """
    if storage.is_url(prefix):
        folder, base = prefix.rsplit("/", 1)
        try:
            return tuple(sorted((name, storage.getsize(storage.join(folder, name)),
                                 int((storage.getmtime(storage.join(folder, name)) or 0) * 1e9))
                                for name, is_dir in storage.listdir(folder) if not is_dir and _belongs(name, base)))
        except OSError:
            return ()
    folder, base = os.path.split(prefix)
    found = []
    try:
        with os.scandir(folder or ".") as listing:
            for entry in listing:
                if _belongs(entry.name, base) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found.append((entry.name, st.st_size, st.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(found))
