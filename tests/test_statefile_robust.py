"""The state-file parser accepts what TensorFlow's text_format.Merge accepts, and nothing else, never a traceback."""

from __future__ import annotations

import math
import os
import random

import pytest

from ckptlib import errors
from ckptlib.runs.history import find_runs, load_history
from ckptlib.runs.statefile import parse_state, read_state

pytest.importorskip("tensorflow")
from google.protobuf import text_format  # noqa: E402 - the parser TensorFlow's get_checkpoint_state uses
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState  # noqa: E402

REAL = (b'model_checkpoint_path: "model.ckpt-6"\n'
        b'all_model_checkpoint_paths: "model.ckpt-4"\n'
        b'all_model_checkpoint_paths: "model.ckpt-5"\n'
        b'all_model_checkpoint_paths: "model.ckpt-6"\n'
        b'all_model_checkpoint_timestamps: 1700000000.5\n'
        b'all_model_checkpoint_timestamps: 1700000060.25\n'
        b'all_model_checkpoint_timestamps: 1700000120\n'
        b'last_preserved_timestamp: 1699999999.0\n')  # fmt: skip


def _tensorflow(raw: bytes):
    """What TensorFlow makes of the bytes: a CheckpointState, or None when text_format refuses them."""
    try:
        text = raw.decode("utf-8")  # file_io.read_file_to_string decodes first
        state = CheckpointState()
        text_format.Merge(text, state)
        return state
    except (text_format.ParseError, UnicodeDecodeError):
        return None


def _agree(raw: bytes) -> None:
    """Ours accepts exactly what TensorFlow accepts, with the same values (unknown times left out)."""
    theirs = _tensorflow(raw)
    try:
        ours = parse_state(raw, "/run/checkpoint")
    except errors.StateFileError as exc:
        message = str(exc)
        assert theirs is None, f"TensorFlow accepts {raw!r}, ckptlib says: {message}"
        assert message.startswith("Cannot parse state file '/run/checkpoint'") and len(message.splitlines()) == 1
        return
    assert theirs is not None, f"TensorFlow refuses {raw!r}, ckptlib accepts it"
    assert ours.model_checkpoint_path == (theirs.model_checkpoint_path or None)
    assert list(ours.all_model_checkpoint_paths) == list(theirs.all_model_checkpoint_paths)
    stamps = list(theirs.all_model_checkpoint_timestamps)
    finite = all(math.isfinite(t) and 0 <= t < 2.6e11 for t in stamps)
    assert list(ours.all_model_checkpoint_timestamps) == (stamps if finite else [])
    kept = theirs.last_preserved_timestamp  # proto3: 0.0 when absent, where ckptlib says None
    assert (ours.last_preserved_timestamp or 0.0) == (kept if math.isfinite(kept) and 0 <= kept < 2.6e11 else 0.0)


@pytest.mark.parametrize("line", [
    # what the trial found: tracebacks before
    "all_model_checkpoint_timestamps: 1.2.3", "all_model_checkpoint_timestamps: e",
    'model_checkpoint_path: "bad \\x escape"', 'model_checkpoint_path: "\\xZZ"',
    "all_model_checkpoint_timestamps: nan", "all_model_checkpoint_timestamps: inf",
    "last_preserved_timestamp: 1e300", "last_preserved_timestamp: -inf", "last_preserved_timestamp: 1e999",
    # spellings text_format allows
    "last_preserved_timestamp: -Infinity", "last_preserved_timestamp: nanf", "last_preserved_timestamp: 1.5f",
    "last_preserved_timestamp: 12", "last_preserved_timestamp: .5", "last_preserved_timestamp: 1_000",
    "last_preserved_timestamp: 012", "last_preserved_timestamp: 0x10", "last_preserved_timestamp: +5",
    "last_preserved_timestamp: - 5", "last_preserved_timestamp: true", "last_preserved_timestamp: \"5\"",
    "last_preserved_timestamp 5", "last_preserved_timestamp: 5;", "last_preserved_timestamp: 5,,",
    "model_checkpoint_path: 'single'", "model_checkpoint_path: \"a\" 'b' \"c\"", "model_checkpoint_path: \"open",
    "model_checkpoint_path: \"\\303\\251t\\303\\251\"", "model_checkpoint_path: \"\\377\"",
    "model_checkpoint_path: \"\\u00e9\"", "model_checkpoint_path: \"\\u12\"", "model_checkpoint_path: \"\\q\"",
    "model_checkpoint_path: \"tab\\there\" # a comment", "model_checkpoint_path: x",
    "all_model_checkpoint_paths: [\"a\", \"b\"]", "all_model_checkpoint_paths: []",
    "all_model_checkpoint_paths: [\"a\",]", "all_model_checkpoint_paths: [\"a\" \"b\"]",
    "model_checkpoint_path: [\"a\"]", "all_model_checkpoint_timestamps: [1, 2, inf]",
    "model_checkpoint_path: \"a\" all_model_checkpoint_paths: \"a\"", "unknown_field: 1", "1: \"a\"",
    "model_checkpoint_path {}", "# only a comment", "", "model_checkpoint_path: \"a\"\r",
    "model_checkpoint_path:\n\"on the next line\"", "\x00", "model_checkpoint_path: \"\x00\"",
])  # fmt: skip
def test_a_line_is_read_as_tensorflow_reads_it(line):
    _agree(line.encode("utf-8"))
    _agree(REAL + line.encode("utf-8") + b"\n")


def test_not_utf8_is_refused_as_tensorflow_refuses_it():
    _agree(b'model_checkpoint_path: "\xff"\n')
    with pytest.raises(errors.StateFileError, match="not UTF-8"):
        parse_state(b'model_checkpoint_path: "\xff"\n', "/run/checkpoint")


def test_random_damage_never_gives_a_traceback_nor_disagrees_with_tensorflow():
    rng = random.Random(10)
    alphabet = b' \n\t:"\'#[],;.-+_0123456789efinaxuXU\\\x00\xc3\xa9\xff'
    for _ in range(3000):
        raw = bytearray(REAL)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(raw))
            action = rng.random()
            if action < 0.4:
                raw[pos] = rng.choice(alphabet)
            elif action < 0.7:
                del raw[pos]
            else:
                raw.insert(pos, rng.choice(alphabet))
        _agree(bytes(raw))


def test_unknown_times_leave_the_paths(tmp_path):
    (tmp_path / "checkpoint").write_bytes(REAL.replace(b"1700000060.25", b"nan"))
    state = read_state(str(tmp_path))
    assert state.all_model_checkpoint_paths == ("model.ckpt-4", "model.ckpt-5", "model.ckpt-6")
    assert state.all_model_checkpoint_timestamps == () and state.last_preserved_timestamp == 1699999999.0


def test_a_folder_named_checkpoint_is_no_state_file(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    assert read_state(str(tmp_path)) is None


def test_a_fifo_state_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "checkpoint")
    with pytest.raises(errors.StateFileError, match="not a regular file"):
        read_state(str(tmp_path))


def _broken_runs(root, saver_rel) -> dict[str, bytes | None]:
    import shutil

    broken = {"dots": b"all_model_checkpoint_timestamps: 1.2.3\n", "e": b"last_preserved_timestamp: e\n",
              "escape": b'model_checkpoint_path: "\\x"\n', "binary": b"\xff\xfe\x00garbage",
              "stamps": REAL.replace(b"1700000120", b"1e300"), "fifo": None}  # fmt: skip
    for name, content in broken.items():
        run = root / name
        shutil.copytree(saver_rel[0], run)
        os.remove(run / "checkpoint")
        if content is None:
            os.mkfifo(run / "checkpoint")
        else:
            (run / "checkpoint").write_bytes(content)
    shutil.copytree(saver_rel[0], root / "healthy")
    return broken


def test_one_broken_state_file_never_breaks_the_others(tmp_path, saver_rel):
    broken = _broken_runs(tmp_path, saver_rel)
    runs = {run.name: run for run in find_runs(str(tmp_path))}
    assert set(runs) == set(broken) | {"healthy"}
    assert runs["healthy"].latest_step == 6 and runs["stamps"].latest_step == 6
    for name in ("dots", "e", "escape", "binary", "fifo"):
        problem = load_history(str(tmp_path / name)).problem
        assert problem.startswith("Cannot ") and "checkpoint'" in problem and len(problem.splitlines()) == 1, problem
        assert runs[name].num_checkpoints == 3  # found on disk all the same
    assert "not a regular file" in load_history(str(tmp_path / "fifo")).problem
    assert load_history(str(tmp_path / "stamps")).problem is None
