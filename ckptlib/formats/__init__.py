"""File → tensors: the Checkpoint interface every format implements, the sniffer, one module per format."""

# The names below load on first use (PEP 562): `from ckptlib.formats.types import VariableInfo` — what the
# CLI's documents and the result cache's types need — then costs no numpy and no format parser.
_LAZY = {"CHUNK_ELEMENTS": "ckptlib.formats.base", "Checkpoint": "ckptlib.formats.base",
         "FORMATS": "ckptlib.formats.sniff", "detect": "ckptlib.formats.sniff",
         "open_checkpoint": "ckptlib.formats.sniff", "VariableInfo": "ckptlib.formats.types"}

__all__ = ["CHUNK_ELEMENTS", "FORMATS", "Checkpoint", "VariableInfo", "detect", "open_checkpoint"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'ckptlib.formats' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
