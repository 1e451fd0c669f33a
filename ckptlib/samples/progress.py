"""Progress lines on stderr while the sample runs are generated."""

from __future__ import annotations

import sys


def progress(message: str) -> None:
    print(f"samples: {message}", file=sys.stderr, flush=True)
