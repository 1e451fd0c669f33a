"""Cached wrappers around ckptlib: the only st.cache_* calls, keyed by file sizes and mtimes."""

# st.cache_data hashes every argument whose name does not start with "_": the `signature`
# arguments (sizes and mtimes of the files) make a rewritten checkpoint a cache miss.

from __future__ import annotations

import os

import streamlit as st

from ckptlib.history import find_runs, load_history
from ckptlib.reader import Checkpoint, open_checkpoint
from ckptlib.stats import summarize
from ckptlib.types import RunHistory, RunSummary, TensorSummary, VariableInfo


def folder_signature(folder: str) -> tuple:
    """(name, size, mtime_ns) of every entry: changes whenever a checkpoint is written or removed."""
    try:
        with os.scandir(folder) as listing:
            return tuple(sorted((e.name, *_stat(e)) for e in listing))
    except OSError:
        return ()


def _stat(entry: os.DirEntry) -> tuple[int, int]:
    try:
        info = entry.stat()
        return info.st_size, info.st_mtime_ns
    except OSError:
        return -1, -1


def prefix_signature(prefix: str) -> tuple:
    """Sizes and mtimes of one checkpoint's files, so a rewritten checkpoint is never served stale."""
    folder, base = os.path.split(prefix)
    return tuple(item for item in folder_signature(folder) if item[0].startswith(base + "."))


@st.cache_data(ttl=60, show_spinner="Looking for runs…")
def runs(root: str) -> tuple[RunSummary, ...]:
    # A folder walk has no cheap signature; a minute-long TTL and the Refresh button keep it fresh.
    return find_runs(root)


def history(run_dir: str) -> RunHistory:
    return _history(run_dir, folder_signature(run_dir))


@st.cache_data(show_spinner=False, max_entries=256)
def _history(run_dir: str, signature: tuple) -> RunHistory:
    return load_history(run_dir)


def variables(prefix: str) -> tuple[VariableInfo, ...]:
    return _variables(prefix, prefix_signature(prefix))


@st.cache_data(show_spinner=False, max_entries=256)
def _variables(prefix: str, signature: tuple) -> tuple[VariableInfo, ...]:
    return open_checkpoint(prefix).variables


def tensor_summary(prefix: str, name: str) -> TensorSummary:
    return _tensor_summary(prefix, name, prefix_signature(prefix))


@st.cache_data(show_spinner="Reading the tensor…", max_entries=128)
def _tensor_summary(prefix: str, name: str, signature: tuple) -> TensorSummary:
    ckpt = Checkpoint(prefix)
    return summarize(prefix, ckpt.info(name), ckpt.read(name))


def tensor(prefix: str, name: str):
    return _tensor(prefix, name, prefix_signature(prefix))


@st.cache_data(show_spinner=False, max_entries=16)
def _tensor(prefix: str, name: str, signature: tuple):
    return Checkpoint(prefix).read(name)
