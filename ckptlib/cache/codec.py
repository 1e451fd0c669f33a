"""Results to JSON and back: frozen dataclasses of ckptlib's own types only, tuples, numpy arrays, numbers.

JSON rather than pickle: a cache file is data, and decoding it never runs code or builds a class
outside the allowlist below.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import math

import numpy as np

# The modules whose dataclasses may be stored; anything else in an entry makes it unreadable (recomputed).
ALLOWED_MODULES = ("ckptlib.formats.types", "ckptlib.runs.types", "ckptlib.tensors.types", "ckptlib.compare.types",
                   "ckptlib.evaluate.types", "ckptlib.graph.types")


class CodecError(ValueError):
    """An entry that cannot be decoded: corrupt, truncated, or holding a type outside the allowlist."""


def encode(value):
    """A JSON-ready structure for `value` (dataclasses tagged with their class, tuples kept as tuples)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__ not in ALLOWED_MODULES:
            raise TypeError(f"{cls.__module__}.{cls.__name__} is not a cacheable type")
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"$dc": f"{cls.__module__}:{cls.__qualname__}", "f": fields}
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"$d": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays are not cacheable")
        data = np.ascontiguousarray(value)
        return {"$nd": data.dtype.str, "shape": list(data.shape), "b": base64.b64encode(data.tobytes()).decode()}
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {"$f": repr(value)}  # JSON has no NaN/Infinity
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} is not cacheable")


def decode(data):
    """The value `encode` made; CodecError for anything it could not have made."""
    try:
        return _decode(data)
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, ImportError) as exc:
        raise CodecError(f"unreadable cache entry ({type(exc).__name__})") from None


def _decode(data):
    if isinstance(data, list):
        return [_decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$dc" in data:
        module, _, name = data["$dc"].partition(":")
        if module not in ALLOWED_MODULES or "." in name:
            raise CodecError(f"type {data['$dc']!r} is not allowed in the cache")
        cls = getattr(importlib.import_module(module), name)
        if not dataclasses.is_dataclass(cls):
            raise CodecError(f"{data['$dc']!r} is not a dataclass")
        return cls(**{k: _decode(v) for k, v in data["f"].items()})
    if "$t" in data:
        return tuple(_decode(v) for v in data["$t"])
    if "$d" in data:
        return {_decode(k): _decode(v) for k, v in data["$d"]}
    if "$nd" in data:
        dtype = np.dtype(data["$nd"])
        if dtype == object:
            raise CodecError("object arrays are not allowed in the cache")
        return np.frombuffer(base64.b64decode(data["b"]), dtype=dtype).reshape(data["shape"]).copy()
    if "$f" in data:
        return float(data["$f"])
    if "$b" in data:
        return base64.b64decode(data["$b"])
    raise CodecError("unknown tag in cache entry")
