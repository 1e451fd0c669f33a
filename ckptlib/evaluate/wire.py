"""What the evaluation child sends back, as JSON lines: results of ckptlib's own types, progress, errors."""

# JSON rather than pickle: the child runs a graph from elsewhere, so what it says is data, and decoding
# it never runs code or builds a class outside the two modules below.

from __future__ import annotations

import dataclasses
import importlib
import json
import math

import numpy as np

from ckptlib import errors

_MODULES = ("ckptlib.evaluate.types", "ckptlib.runs.types")


def encode(value):
    """A JSON-ready structure: dataclasses tagged with their class, tuples kept apart from lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__ not in _MODULES:
            raise TypeError(f"{cls.__module__}.{cls.__name__} cannot leave the evaluation process")
        return {"$dc": f"{cls.__module__}:{cls.__qualname__}",
                "f": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}}
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        return encode(value.tolist())
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {"$f": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} cannot leave the evaluation process")


def decode(data):
    """The value `encode` made; ValueError for anything it could not have made."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$dc" in data:
        module, _, name = str(data["$dc"]).partition(":")
        if module not in _MODULES or "." in name:
            raise ValueError(f"type {data['$dc']!r} is not one the evaluation process may send")
        cls = getattr(importlib.import_module(module), name, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{data['$dc']!r} is not a dataclass")
        return cls(**{k: decode(v) for k, v in dict(data["f"]).items()})
    if "$t" in data:
        return tuple(decode(v) for v in data["$t"])
    if "$f" in data:
        return float(data["$f"])
    raise ValueError("unknown tag in a message from the evaluation process")


def message(kind: str, value=None) -> bytes:
    """One line: {"kind": ..., "value": ...}."""
    return (json.dumps({"kind": kind, "value": encode(value)}) + "\n").encode()


def error_message(exc: errors.CkptError) -> bytes:
    return message("error", [type(exc).__name__, str(exc)])


def parse(line: bytes) -> tuple[str, object]:
    """(kind, value) of one line `message` wrote."""
    data = json.loads(line)
    return str(data["kind"]), decode(data["value"])


def rebuild_error(value) -> errors.CkptError:
    """The CkptError subclass the child raised, by name (CkptError itself for a name it does not know)."""
    name, text = value
    cls = getattr(errors, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.CkptError)):
        cls = errors.CkptError
    return cls(str(text))
