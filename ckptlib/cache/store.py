"""The result cache on disk: one SQLite file (WAL) outside every checkpoint folder, bounded, least recently used out.

    >>> cache = ResultCache("/tmp/ckptlib-cache-example.sqlite3")
    >>> cache.get_or_compute(("example", 1), lambda: (1, 2.5))
    (1, 2.5)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from typing import TypeVar


ENV_CACHE = "CKPTLIB_CACHE"
FORMAT_VERSION = 3  # part of every key: a release that changes a result's meaning changes this
DEFAULT_MAX_BYTES = 512 << 20
T = TypeVar("T")


def default_path() -> str:
    """$CKPTLIB_CACHE, else $XDG_CACHE_HOME/ckptlib/results.sqlite3, else ~/.cache/ckptlib/results.sqlite3."""
    if os.environ.get(ENV_CACHE):
        return os.path.expanduser(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ckptlib", "results.sqlite3")


def key_of(parts) -> str:
    """A stable hex key for a JSON-able description of what a result depends on."""
    text = json.dumps([FORMAT_VERSION, parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """get/put by key; a missing, corrupt or unreadable entry is a miss, and an unusable file disables the cache.

    Writers in several processes at once are serialised by SQLite's lock (busy timeout); an entry is
    written whole in one transaction, so a reader never sees half of one.
    """

    def __init__(self, path: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.path = os.path.abspath(path or default_path())
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._broken = False

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
                         "size INTEGER NOT NULL, used REAL NOT NULL)")
            yield conn
        finally:
            conn.close()

    def get(self, key: str):
        """The cached value, or None (a miss) — also when the entry is damaged (then it is dropped)."""
        if self._broken:
            return None
        try:
            with self._connect() as conn:
                row = conn.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
                if row is None:
                    return None
                try:
                    from ckptlib.cache.codec import decode  # numpy: only when an entry is read

                    value = decode(json.loads(zlib.decompress(row[0])))
                except (zlib.error, ValueError):  # truncated or tampered with (CodecError is a ValueError): never trusted
                    conn.execute("DELETE FROM results WHERE key = ?", (key,))
                    return None
                conn.execute("UPDATE results SET used = ? WHERE key = ?", (time.time(), key))
                return value
        except (sqlite3.Error, OSError):
            self._broken = True  # a read-only or damaged cache file: carry on without a cache
            return None

    def put(self, key: str, value) -> None:
        if self._broken:
            return
        from ckptlib.cache.codec import encode

        blob = zlib.compress(json.dumps(encode(value), separators=(",", ":")).encode(), 3)
        if len(blob) > self.max_bytes // 4:
            return  # one result may not push out most of the others
        try:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR REPLACE INTO results (key, value, size, used) VALUES (?, ?, ?, ?)",
                             (key, blob, len(blob), time.time()))
                self._evict(conn)
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError):
            self._broken = True

    def _evict(self, conn: sqlite3.Connection) -> None:
        total = conn.execute("SELECT COALESCE(SUM(size), 0) FROM results").fetchone()[0]
        if total <= self.max_bytes:
            return
        for key, size in conn.execute("SELECT key, size FROM results ORDER BY used").fetchall():
            conn.execute("DELETE FROM results WHERE key = ?", (key,))
            total -= size
            if total <= self.max_bytes * 0.9:  # some headroom, so every put does not evict again
                break

    def get_or_compute(self, parts, compute: Callable[[], T], keep: Callable[[T], bool] | None = None) -> T:
        """The cached result for `parts` (what it depends on), else compute it and store it (if `keep` says so)."""
        key = key_of(parts)
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        value = compute()
        if keep is None or keep(value):
            self.put(key, value)
        return value
