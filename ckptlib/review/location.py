"""Which review database to use: --db, then $CKPTLIB_DB, else an SQLite file in the user's data folder."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DB = "CKPTLIB_DB"
ENV_DATA_DIR = "CKPTLIB_DATA_DIR"


def data_dir() -> Path:
    """$CKPTLIB_DATA_DIR, else $XDG_DATA_HOME/ckptlib, else ~/.local/share/ckptlib (never a checkpoint folder)."""
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ckptlib"


def database_url(explicit: str | None = None) -> str:
    """The SQLAlchemy URL to open: the explicit one, $CKPTLIB_DB, or the default SQLite file."""
    url = explicit or os.environ.get(ENV_DB)
    if url:
        return url
    return f"sqlite:///{data_dir() / 'review.sqlite3'}"
