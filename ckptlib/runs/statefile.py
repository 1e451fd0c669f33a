"""Parse a run's `checkpoint` state file (a text-format CheckpointState proto) without TensorFlow."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ckptlib import errors, storage

STATE_FILENAME = "checkpoint"
# Fields of CheckpointState, tensorflow/core/protobuf/checkpoint_state.proto (tensorflow/python/
# checkpoint/checkpoint_management.py writes it with text_format).
_STRING_FIELDS = {"model_checkpoint_path", "all_model_checkpoint_paths"}
_FLOAT_FIELDS = {"all_model_checkpoint_timestamps", "last_preserved_timestamp"}
_LINE = re.compile(r'^\s*([A-Za-z_]+)\s*:\s*("(?:[^"\\]|\\.)*"|[-+]?[0-9.eE+-]+|inf|-inf|nan)\s*$')
MAX_STATE_BYTES = 16 << 20  # a real state file is a few KB; refuse to slurp a huge foreign file


@dataclass(frozen=True)
class CheckpointState:
    """What the state file says: the latest prefix, the kept prefixes, their timestamps."""

    model_checkpoint_path: str | None
    all_model_checkpoint_paths: tuple[str, ...]
    all_model_checkpoint_timestamps: tuple[float, ...]
    last_preserved_timestamp: float | None


def read_state(run_dir: str) -> CheckpointState | None:
    """The parsed state file of `run_dir`, None when there is none; StateFileError when unreadable."""
    path = storage.join(run_dir, STATE_FILENAME)
    if not storage.isfile(path):
        return None
    try:
        raw = storage.read_bytes(path, MAX_STATE_BYTES)
    except ValueError:
        raise errors.StateFileError(f"Cannot parse state file '{path}': it is too large to be one.") from None
    except OSError as exc:
        raise errors.StateFileError(f"Cannot read state file '{path}': {exc.strerror}.") from exc
    return parse_state(raw, path)


def parse_state(raw: bytes, path: str) -> CheckpointState:
    """Parse the text proto; any line that is not a known `field: value` makes it unreadable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.StateFileError(f"Cannot parse state file '{path}': it is not text.") from exc
    latest = None
    paths: list[str] = []
    stamps: list[float] = []
    preserved = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match or match.group(1) not in _STRING_FIELDS | _FLOAT_FIELDS:
            raise errors.StateFileError(
                f"Cannot parse state file '{path}': line {number} is not a CheckpointState field: {line.strip()[:80]!r}"
            )
        field, value = match.groups()
        is_string = value.startswith('"')
        if is_string != (field in _STRING_FIELDS):
            raise errors.StateFileError(f"Cannot parse state file '{path}': line {number} has a bad value for {field}.")
        if field == "model_checkpoint_path":
            latest = _unquote(value)
        elif field == "all_model_checkpoint_paths":
            paths.append(_unquote(value))
        elif field == "all_model_checkpoint_timestamps":
            stamps.append(float(value))
        else:
            preserved = float(value)
    return CheckpointState(latest, tuple(paths), tuple(stamps), preserved)


def _unquote(value: str) -> str:
    # Text-format strings use C escapes (\", \\, \n, octal \ooo for non-ASCII bytes).
    raw, _ = codecs.escape_decode(value[1:-1].encode("utf-8"))
    return raw.decode("utf-8", errors="replace")
