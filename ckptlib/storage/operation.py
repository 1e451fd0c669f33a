"""One *operation* (a CLI command, a find_runs, a load_history): what it learned from the store, kept until it ends.

`with operation():` (or `@operation()` on a function) remembers each folder's listing (names, sizes,
mtimes), each object's info, and the bytes of small files read whole or of ranges fetched ahead. Inside
it a `getsize`, `exists` or `getmtime` of a listed file costs no request (no HEAD per file), and an
`.index` read by load_history is not fetched again by the reader. Outside an operation every call asks
the store afresh, so nothing is ever served stale across commands or dashboard reruns. Operations nest:
the outermost one owns the memory. The memory lives in a ContextVar: each thread (each Streamlit
session) has its own.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_KEEP_WHOLE_BYTES = 64 << 20  # the largest file whose bytes an operation keeps once read whole
_KEEP_TOTAL_BYTES = 256 << 20  # what one operation keeps in all


class _Memory:
    """What one operation learned: listings (None: that path is a file), infos (None: missing), bytes."""

    def __init__(self) -> None:
        self.listings: dict[str, dict | None] = {}  # folder -> {name: remote.Entry}
        self.infos: dict = {}  # path -> remote.Entry or None
        self.whole: dict[str, bytes] = {}
        self.ranges: dict[str, list[tuple[int, bytes]]] = {}
        self.kept = 0

    def keep(self, url: str, start: int, data: bytes, whole: bool) -> None:
        if len(data) > _KEEP_WHOLE_BYTES or self.kept + len(data) > _KEEP_TOTAL_BYTES:
            return
        self.kept += len(data)
        if whole:
            self.whole[url] = data
        else:
            self.ranges.setdefault(url, []).append((start, data))

    def cached(self, url: str, start: int, end: int) -> bytes | None:
        if url in self.whole:
            return self.whole[url][start:end]
        for first, data in self.ranges.get(url, ()):
            if first <= start and end <= first + len(data):
                return data[start - first : end - first]
        return None


_MEMORY: contextvars.ContextVar[_Memory | None] = contextvars.ContextVar("ckptlib_storage_operation", default=None)


def current() -> _Memory | None:
    """The memory of the operation under way, None outside one."""
    return _MEMORY.get()


@contextlib.contextmanager
def operation() -> Iterator[None]:
    """Share listings and small reads between the store calls made inside (see the module docstring)."""
    if _MEMORY.get() is not None:
        yield
        return
    token = _MEMORY.set(_Memory())
    try:
        yield
    finally:
        _MEMORY.reset(token)
