"""Which name pairs a variable with its counterpart in another checkpoint: its real name when the file has one."""

from __future__ import annotations

from ckptlib.formats import Checkpoint
from ckptlib.formats.types import VariableInfo


def pair_key(info: VariableInfo) -> str:
    """The name a person reads and writes mapping rules against: the object graph's / Keras' name when the file
    resolved one (positional keys shift), else the key without TF2's '/.ATTRIBUTES/VARIABLE_VALUE' tail."""
    return info.display_name


def paired(ckpt: Checkpoint) -> dict[str, VariableInfo]:
    """pair key -> variable, leaving out copies of another tensor (a SavedModel stores each weight twice)."""
    found: dict[str, VariableInfo] = {}
    for info in ckpt.variables:
        if info.copy_of is not None:
            continue
        key = pair_key(info)
        if key in found:  # two tensors claim one real name: neither may borrow it, pair them by raw key
            other = found.pop(key)
            found[other.name] = other
            key = info.name
        found[key] = info
    return found


def find_key(infos: dict[str, VariableInfo], name: str) -> str | None:
    """The pair key of a variable named by its pair key, raw key or display name; None when absent."""
    if name in infos:
        return name
    return next((key for key, info in infos.items() if name in (info.name, info.display_name)), None)
