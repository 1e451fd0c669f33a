"""Where bytes come from: local paths and fsspec URLs (gs://, s3://, memory://) behind one small interface."""

from ckptlib.storage.errors import StoreError, redact
from ckptlib.storage.operation import operation
from ckptlib.storage.paths import (absolute, exists, getmtime, getsize, is_url, isabs, isdir, isfile, join, listdir,
                                   normalize, relative, scan, walk)
from ckptlib.storage.rangefile import NotARegularFile, RangeFile, irregular, open_regular, read_bytes

__all__ = ["NotARegularFile", "RangeFile", "StoreError", "absolute", "exists", "getmtime", "getsize", "irregular",
           "is_url", "isabs", "isdir", "isfile", "join", "listdir", "normalize", "open_regular", "operation",
           "read_bytes", "redact", "relative", "scan", "walk"]
