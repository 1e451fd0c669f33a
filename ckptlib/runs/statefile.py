"""Parse a run's `checkpoint` state file (a text-format CheckpointState proto) without TensorFlow."""

# TensorFlow reads the file with protobuf's text_format.Merge (tensorflow/python/checkpoint/
# checkpoint_management.py, get_checkpoint_state) into CheckpointState (tensorflow/core/protobuf/
# checkpoint_state.proto). This parser accepts what that does, the same way: the tokens of
# google/protobuf/text_format.py (Tokenizer._TOKEN), `field: value` or `field: [v, ...]` for repeated
# fields, optional `,` or `;` after each, `#` comments; strings in single or double quotes with C escapes
# (text_encoding.CUnescape), adjacent strings joined, UTF-8; doubles as ParseFloat reads them (`1e300`,
# `inf`, `-Infinity`, `nanf`, `1.5f`). Anything else is a StateFileError naming the file and the line.
# Timestamps TensorFlow accepts but no clock shows (nan, inf, 1e300) count as unknown.

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ckptlib import errors, storage

STATE_FILENAME = "checkpoint"
MAX_STATE_BYTES = 16 << 20  # a real state file is a few KB; refuse to slurp a huge foreign file
_STRING_FIELDS = {"model_checkpoint_path": False, "all_model_checkpoint_paths": True}  # name -> repeated
_FLOAT_FIELDS = {"all_model_checkpoint_timestamps": True, "last_preserved_timestamp": False}
_TOKEN = re.compile("|".join([r"[a-zA-Z_][0-9a-zA-Z_+-]*", r"([0-9+-]|(\.[0-9]))[0-9a-zA-Z_.+-]*"]
                             + [r"{q}[^{q}\n\\]*((\\.)+[^{q}\n\\]*)*({q}|\\?$)".format(q=q) for q in "'\""]))
_SKIP = re.compile(r"(\s|(#.*$))+", re.MULTILINE)
_HEX_ESCAPE = re.compile(r"(\\+)x([0-9a-fA-F])(?![0-9a-fA-F])")
_OCTAL_FLOAT = re.compile(r"-?0[0-9]+")
_INFINITY = re.compile(r"-?inf(?:inity)?f?$", re.IGNORECASE)
_NAN = re.compile(r"nanf?$", re.IGNORECASE)
_LAST_SECOND = 253402300799.0  # 9999-12-31T23:59:59Z: later "times" cannot be shown as dates


@dataclass(frozen=True)
class CheckpointState:
    """What the state file says: the latest prefix, the kept prefixes, their timestamps.

    `all_model_checkpoint_timestamps` is empty when any of them is unknown (not a finite time), since
    they pair with the paths by position; `last_preserved_timestamp` is None then.
    """

    model_checkpoint_path: str | None
    all_model_checkpoint_paths: tuple[str, ...]
    all_model_checkpoint_timestamps: tuple[float, ...]
    last_preserved_timestamp: float | None


def read_state(run_dir: str) -> CheckpointState | None:
    """The parsed state file of `run_dir`, None when there is none; StateFileError when unreadable.

    A folder named `checkpoint` is no state file (Keras callbacks make those); a FIFO or a device of that
    name is refused unopened (storage.RangeFile opens regular files only).
    """
    path = storage.join(run_dir, STATE_FILENAME)
    if not storage.exists(path) or storage.isdir(path):
        return None
    try:
        raw = storage.read_bytes(path, MAX_STATE_BYTES)
    except ValueError:
        raise errors.StateFileError(f"Cannot parse state file '{path}': it is too large to be one.") from None
    except OSError as exc:
        raise errors.StateFileError(f"Cannot read state file '{path}': {exc.strerror or exc}.") from None
    return parse_state(raw, path)


class _Tokens:
    """protobuf's text_format.Tokenizer: one token at a time, whitespace and # comments skipped."""

    def __init__(self, text: str):
        self.lines = text.split("\n")
        self.line, self.column, self.token = 0, 0, ""
        self.next()

    def next(self) -> None:
        self.column += len(self.token)
        while self.line < len(self.lines):
            current = self.lines[self.line]
            skipped = _SKIP.match(current, self.column)
            self.column = skipped.end() if skipped else self.column
            if self.column < len(current):
                match = _TOKEN.match(current, self.column)
                self.token = match.group(0) if match else current[self.column]
                return
            self.line, self.column = self.line + 1, 0
        self.token = ""

    def take(self, token: str) -> bool:
        if self.token != token:
            return False
        self.next()
        return True


def parse_state(raw: bytes, path: str) -> CheckpointState:
    """Parse the text proto as TensorFlow does; what it would refuse is a StateFileError."""
    try:
        tokens = _Tokens(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise errors.StateFileError(f"Cannot parse state file '{path}': it is not UTF-8 text.") from None
    values: dict[str, list] = {name: [] for name in (*_STRING_FIELDS, *_FLOAT_FIELDS)}
    try:
        while tokens.token:
            field = tokens.token
            repeated = _STRING_FIELDS.get(field, _FLOAT_FIELDS.get(field))
            if repeated is None:
                raise ValueError(f"{field[:60]!r} is not a CheckpointState field")
            tokens.next()
            if not tokens.take(":"):
                raise ValueError(f"expected ':' after {field}")
            read = _string if field in _STRING_FIELDS else _double
            if repeated and tokens.take("["):  # `field: [v, v]`: no trailing comma, as in _MergeField
                while not tokens.take("]"):
                    values[field].append(read(tokens))
                    if tokens.token != "]" and not (tokens.take(",") and tokens.token != "]"):
                        raise ValueError(f"expected a value, ',' or ']' in the list of {field}")
            else:
                values[field].append(read(tokens))
            if not tokens.take(","):
                tokens.take(";")
    except ValueError as exc:
        raise errors.StateFileError(f"Cannot parse state file '{path}': line {tokens.line + 1}: {exc}.") from None
    stamps = values["all_model_checkpoint_timestamps"]
    preserved = values["last_preserved_timestamp"]
    known = all(_is_time(t) for t in stamps)
    return CheckpointState(
        model_checkpoint_path=values["model_checkpoint_path"][-1] if values["model_checkpoint_path"] else None,
        all_model_checkpoint_paths=tuple(values["all_model_checkpoint_paths"]),
        all_model_checkpoint_timestamps=tuple(stamps) if known else (),
        last_preserved_timestamp=preserved[-1] if preserved and _is_time(preserved[-1]) else None,
    )


def _string(tokens: _Tokens) -> str:
    # Tokenizer.ConsumeString: one or more adjacent quoted tokens, each CUnescaped, joined, then UTF-8.
    pieces = []
    while tokens.token[:1] in ("'", '"') or not pieces:
        text = tokens.token
        if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
            raise ValueError(f"expected a quoted string, not {text[:40]!r}")
        pieces.append(_unescape(text[1:-1]))
        tokens.next()
    try:
        return b"".join(pieces).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("a path is not UTF-8 once unescaped") from None


def _unescape(text: str) -> bytes:
    # google/protobuf/text_encoding.py CUnescape, step by step (single-digit \xf is allowed there).
    text = _HEX_ESCAPE.sub(lambda m: m.group(1) + "x0" + m.group(2) if len(m.group(1)) & 1 else m.group(0), text)
    try:
        text = text.encode("raw_unicode_escape").decode("raw_unicode_escape")
        return text.encode("utf-8").decode("unicode_escape").encode("latin-1")
    except (UnicodeError, ValueError):
        raise ValueError(f"bad escape in the string {text[:40]!r}") from None


def _double(tokens: _Tokens) -> float:
    # text_format.ParseFloat: Python's float(), then inf/nan spellings, then a trailing 'f'.
    text = tokens.token
    try:
        if _OCTAL_FLOAT.match(text):
            raise ValueError
        try:
            value = float(text)
        except ValueError:
            value = float("-inf" if text[0] == "-" else "inf") if _INFINITY.match(text) else (
                math.nan if _NAN.match(text) else float(text.rstrip("fF")))
    except (ValueError, IndexError):
        raise ValueError(f"{text[:40]!r} is not a number") from None
    tokens.next()
    return value


def _is_time(value: float) -> bool:
    return math.isfinite(value) and 0 <= value <= _LAST_SECOND
