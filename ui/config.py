"""Which root folders this dashboard may read: --root, CKPTLIB_ROOT, else the bundled samples."""

from __future__ import annotations

import argparse
import os
import sys

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ROOT = os.path.join(APP_DIR, "sample_checkpoints")


def allowed_roots(argv: list[str] | None = None, environ: dict | None = None) -> tuple[str, ...]:
    """Roots from `streamlit run dashboard.py -- --root DIR [--root DIR2]`, else CKPTLIB_ROOT
    (os.pathsep-separated), else sample_checkpoints/ beside dashboard.py."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--root", action="append", default=[])
    known, _ = parser.parse_known_args(argv)
    roots = known.root or [r for r in environ.get("CKPTLIB_ROOT", "").split(os.pathsep) if r]
    roots = roots or [DEFAULT_ROOT]
    return tuple(dict.fromkeys(os.path.realpath(os.path.expanduser(r)) for r in roots))


def inside(path: str, roots: tuple[str, ...]) -> bool:
    """True when `path` (symlinks resolved) lies in one of `roots`."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, root]) == root for root in roots)
