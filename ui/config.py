"""Which root folders this dashboard may read (--root, CKPTLIB_ROOT, else the bundled samples) and which
review database it uses (--db, CKPTLIB_DB, else the default SQLite file in the user's data folder)."""

from __future__ import annotations

import argparse
import os
import re
import sys

from ckptlib import storage
from ckptlib.review.location import ENV_DB
from ckptlib.review.location import database_url as default_database_url

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ROOT = os.path.join(APP_DIR, "sample_checkpoints")


def allowed_roots(argv: list[str] | None = None, environ: dict | None = None) -> tuple[str, ...]:
    """Roots from `streamlit run dashboard.py -- --root DIR [--root DIR2]`, else CKPTLIB_ROOT
    (os.pathsep-separated), else sample_checkpoints/ beside dashboard.py. A root may be a bucket prefix
    (`s3://bucket/runs`, `gs://…`): the ':' of its scheme does not split CKPTLIB_ROOT."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--root", action="append", default=[])
    known, _ = parser.parse_known_args(argv)
    roots = known.root or [r for r in _split_roots(environ.get("CKPTLIB_ROOT", "")) if r]
    roots = roots or [DEFAULT_ROOT]
    return tuple(dict.fromkeys(_canonical(r) for r in roots))


def _split_roots(value: str) -> list[str]:
    return re.split(r":(?!//)", value) if os.pathsep == ":" else value.split(os.pathsep)


def _canonical(path: str) -> str:
    """A root or a path as inside() compares them: URLs normalised, local paths with symlinks resolved."""
    if storage.is_url(path):
        return storage.normalize(storage.absolute(path))
    return os.path.realpath(os.path.expanduser(path))


def database_url(argv: list[str] | None = None, environ: dict | None = None) -> str:
    """The review database's SQLAlchemy URL: `streamlit run dashboard.py -- --db URL`, else CKPTLIB_DB,
    else the default SQLite file (ckptlib.review.location)."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(argv)
    return default_database_url(known.db or environ.get(ENV_DB) or None)


def inside(path: str, roots: tuple[str, ...]) -> bool:
    """True when `path` (symlinks resolved; a URL normalised) lies in one of `roots`."""
    real = _canonical(path)
    if storage.is_url(real):
        return any(storage.is_url(root) and (real == root or real.startswith(root.rstrip("/") + "/")) for root in roots)
    return any(not storage.is_url(root) and os.path.commonpath([real, root]) == root for root in roots)
