"""Where bytes come from: local paths and fsspec URLs (gs://, s3://, memory://) behind one small interface."""

from ckptlib.storage.errors import StoreError, redact
from ckptlib.storage.operation import operation
from ckptlib.storage.paths import (absolute, exists, getmtime, getsize, is_url, isabs, isdir, isfile, join, listdir,
                                   normalize, read_bytes, relative, scan, walk)
from ckptlib.storage.rangefile import RangeFile

__all__ = ["RangeFile", "StoreError", "absolute", "exists", "getmtime", "getsize", "is_url", "isabs", "isdir",
           "isfile", "join", "listdir", "normalize", "operation", "read_bytes", "redact", "relative",
           "scan", "walk"]
