"""Reading objects at URLs exactly: ranged requests for the bytes asked, small files whole, prefetches coalesced.

Reads name their byte range (HTTP Range): s3fs's default 5 MB read-ahead block never applies because no
file object is opened (and remote.py sets `default_cache_type="none"` should one be). Small files (state
file, .meta, an .index up to SMALL_FILE_BYTES) are read whole in one request and kept for the operation;
adjacent ranges handed to `prefetch` are coalesced (fsspec.utils.merge_offset_ranges) and fetched
together with `cat_ranges`, as are the many small files handed to `prefetch_files`.
"""

from __future__ import annotations

from ckptlib.storage.errors import store_errors
from ckptlib.storage.operation import current
from ckptlib.storage.remote import Entry, known, url_filesystem, url_key

SMALL_FILE_BYTES = 64 << 10  # a footer read fetches the whole file up to this size (most .index files)


def read(url: str, start: int, end: int, size: int) -> bytes:
    """Bytes [start, end) of the object `url` of `size` bytes: one ranged request, or none if the operation has them.

    A read of the whole file, or of the end of a file of at most SMALL_FILE_BYTES (a table's footer: the
    rest is read next), fetches the whole file and keeps it for the operation (the next reader of the
    same .index pays nothing).
    """
    end = min(end, size)
    if start >= end:
        return b""
    key, memory = url_key(url), current()
    if memory is not None and (data := memory.cached(key, start, end)) is not None:
        return data
    fs, inner = url_filesystem(url)
    whole = end == size and (start == 0 or size <= SMALL_FILE_BYTES)
    with store_errors(url):
        data = fs.cat_file(inner, start=0, end=size) if whole else fs.cat_file(inner, start=start, end=end)
    if whole:
        if memory is not None:
            memory.keep(key, 0, data, whole=True)
        return data[start:end]
    return data


def prefetch(url: str, ranges: list[tuple[int, int]], max_gap: int = 0) -> None:
    """Fetch the byte ranges of `url` the caller is about to read, adjacent ones (gaps ≤ max_gap) as one
    request, all of them together (fsspec cat_ranges), and keep them for the operation.

    Nothing happens outside an operation (there is nowhere to keep them) or for ranges it already has.
    """
    memory, key = current(), url_key(url)
    if memory is None:
        return
    wanted = sorted((s, e) for s, e in ranges if e > s and memory.cached(key, s, e) is None)
    if not wanted:
        return
    from fsspec.utils import merge_offset_ranges

    fs, inner = url_filesystem(url)
    paths, starts, ends = merge_offset_ranges([inner] * len(wanted), [s for s, _ in wanted], [e for _, e in wanted],
                                              max_gap=max_gap, sort=True)
    with store_errors(url):
        blobs = fs.cat_ranges(paths, starts, ends, on_error="raise")
    for start, data in zip(starts, blobs):
        memory.keep(key, start, bytes(data), whole=False)


def prefetch_files(urls: list[str], limit: int = 1 << 20) -> None:
    """Fetch the small files `urls` (each ≤ `limit` bytes, sizes from the operation's listings) all at once,
    concurrently (cat_ranges), and keep them for the operation: 120 .index files cost one round trip's
    latency instead of 120. Files it does not know the size of, large ones, and everything outside an
    operation are left to be read when asked for."""
    memory = current()
    if memory is None:
        return
    wanted = [(u, e.size) for u in urls if isinstance(e := known(u), Entry) and not e.is_dir
              and 0 < e.size <= limit and url_key(u) not in memory.whole]
    if len(wanted) < 2:
        return
    fs, _ = url_filesystem(wanted[0][0])
    inner = [url_filesystem(u)[1] for u, _ in wanted]
    with store_errors(wanted[0][0].rsplit("/", 1)[0]):
        blobs = fs.cat_ranges(inner, [0] * len(wanted), [size for _, size in wanted], on_error="return")
    for (url, size), data in zip(wanted, blobs):
        if isinstance(data, bytes) and len(data) == size:  # a failure is met again, with its own message, on reading
            memory.keep(url_key(url), 0, data, whole=True)
