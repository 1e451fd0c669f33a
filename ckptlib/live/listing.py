"""One cheap look at a run folder: the size and mtime of every checkpoint file, grouped by prefix."""

# A poll must cost one listing, whatever the number of checkpoints: locally os.scandir (one stat per
# checkpoint file), for a URL one fsspec `ls` whose entries already carry sizes and times. Nothing is
# opened here; the watcher opens only the prefixes whose fingerprint changed.

from __future__ import annotations

import datetime
import os
import posixpath
import re
from dataclasses import dataclass

from ckptlib import storage
from ckptlib.runs.keras_run import is_keras_file
from ckptlib.runs.statefile import STATE_FILENAME
from ckptlib.storage.paths import local_path, url_filesystem

# The names load_history groups by prefix (ckptlib/runs/history.py): PREFIX.index, PREFIX.data-NNNNN-of-NNNNN,
# and the '<prefix>_temp/' ('<prefix>_temp_<uuid hex>/' in TF2) folder a sharded save renames at the end.
# TensorFlow writes each file as '<name>.tempstate<N>' and renames it: those names match nothing here.
_DATA = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")
_TEMP_DIR = re.compile(r"^(?P<prefix>.+)_temp(_[0-9a-f]{32})?$")
_INDEX = ".index"
# Keras ModelCheckpoint files are written whole in place, then closed (a `.weights.json` after its shards
# '<base>_00000.weights.h5'): one is complete once its size and mtime hold still over two polls and it opens.
_SHARD = re.compile(r"^(?P<base>.+)_\d{5}\.weights\.h5$")

Stamp = tuple[str, int, float | None]  # (file name, size in bytes, mtime in unix seconds or None)


@dataclass(frozen=True)
class Fingerprint:
    """What the listing says about one prefix; equal fingerprints at two polls mean nothing is being written."""

    files: tuple[Stamp, ...]  # its .index and data shards (a Keras file and its shards), sorted by name
    temp: bool  # an unfinished save's temporary folder is beside it
    keras: bool = False  # a Keras file (`.keras`, `.weights.h5`, `.weights.json` + shards), named by its file

    @property
    def index(self) -> Stamp | None:
        """A bundle's `.index` stamp; None for a Keras file, which has none (see `Listing.stable_keras`)."""
        return next((s for s in self.files if s[0].endswith(_INDEX)), None)


@dataclass(frozen=True)
class Listing:
    """Every checkpoint prefix of a run folder at one poll, and the state file's stamp."""

    prefixes: dict[str, Fingerprint]  # prefix name (no folder; a Keras file's own name) -> fingerprint
    state: tuple[int, float | None] | None  # the `checkpoint` state file's (size, mtime), None when absent

    def stable_keras(self, last: Listing | None) -> list[str]:
        """The Keras files whose sizes and mtimes (shards included) equal `last` poll's: written and closed.

        Whether one opens (a truncated or foreign file does not) is for the reader to find out.
        """
        if last is None:
            return []
        return sorted(name for name, found in self.prefixes.items()
                      if found.keras and found.files and last.prefixes.get(name) == found)


def list_run(run_dir: str) -> Listing:
    """One listing of `run_dir`; OSError when the folder cannot be listed (gone, permissions, network)."""
    files, temps = _list_url(run_dir) if storage.is_url(run_dir) else _list_local(run_dir)
    grouped: dict[str, list[Stamp]] = {}
    maps = {name[: -len(".weights.json")] for name, _, _ in files if name.endswith(".weights.json")}
    keras = set()
    for name, size, mtime in files:
        if is_keras_file(name):
            shard = _SHARD.match(name)
            prefix = shard.group("base") + ".weights.json" if shard and shard.group("base") in maps else name
            keras.add(prefix)
        elif name.endswith(_INDEX):
            prefix = name[: -len(_INDEX)]
        elif match := _DATA.match(name):
            prefix = match.group("prefix")
        else:
            continue
        grouped.setdefault(prefix, []).append((name, size, mtime))
    prefixes = {prefix: Fingerprint(tuple(sorted(stamps)), prefix in temps, prefix in keras)
                for prefix, stamps in grouped.items()}
    state = next(((size, mtime) for name, size, mtime in files if name == STATE_FILENAME), None)
    return Listing(prefixes, state)


def _wanted(name: str) -> bool:
    return name == STATE_FILENAME or name.endswith(_INDEX) or bool(_DATA.match(name)) or is_keras_file(name)


def _list_local(run_dir: str) -> tuple[list[Stamp], set[str]]:
    files, temps = [], set()
    with os.scandir(local_path(run_dir)) as listing:
        for entry in listing:
            try:
                if entry.is_dir():
                    if match := _TEMP_DIR.match(entry.name):
                        temps.add(match.group("prefix"))
                    continue
                if not _wanted(entry.name):
                    continue
                info = entry.stat()
            except FileNotFoundError:  # deleted between the listing and its stat (max_to_keep at work)
                continue
            files.append((entry.name, info.st_size, info.st_mtime_ns / 1e9))
    return files, temps


def _list_url(run_dir: str) -> tuple[list[Stamp], set[str]]:
    fs, inner = url_filesystem(run_dir)
    fs.invalidate_cache(inner)  # fsspec caches listings: a watch must see objects written since the last one
    files, temps = [], set()
    for info in fs.ls(inner, detail=True):
        full = info["name"].rstrip("/")
        name = posixpath.basename(full)
        if not name or full == inner.rstrip("/"):  # some stores list the folder itself
            continue
        if info.get("type") == "directory":
            if match := _TEMP_DIR.match(name):
                temps.add(match.group("prefix"))
        elif _wanted(name):
            files.append((name, int(info.get("size") or 0), _info_time(info)))
    return files, temps


def _info_time(info: dict) -> float | None:
    """The modification time an `ls` entry carries (stores name it differently), in unix seconds."""
    for key in ("mtime", "LastModified", "updated", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, str):
            try:  # ISO 8601 (GCS "updated")
                value = datetime.datetime.fromisoformat(value)
            except ValueError:
                continue
        if isinstance(value, datetime.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=datetime.UTC)).timestamp()
        if isinstance(value, (int, float)):
            return float(value)
    return None
