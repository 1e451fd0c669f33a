"""A simulated clock for TensorFlow's checkpoint-keeping code, and checks of what that code kept."""

# `keep_checkpoint_every_n_hours` decides from wall-clock time which rotated-out checkpoints to keep, so
# on a real clock the set of files left on disk would depend on the machine's speed. The runs therefore
# save under a simulated clock: each save interval lasts a fixed number of simulated minutes, and every
# file's mtime is set to its simulated save time. The keep/delete decisions are still made by
# TensorFlow's code; `check_kept` fails loudly if TensorFlow ever stops consulting the clock we substitute.

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from ckptlib.errors import CkptError

from .specs import MINUTE, CnnSpec


class _SimulatedClock:
    """Stands in for the `time` module inside TensorFlow's checkpoint-keeping code."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):  # sleep, monotonic, ... stay real
        return getattr(time, name)


@contextlib.contextmanager
def simulated_clock(start: float):
    """Make tf.compat.v1.train.Saver and tf.train.CheckpointManager read time from a clock we set."""
    from tensorflow.python.checkpoint import checkpoint_management  # pylint: disable=import-outside-toplevel
    from tensorflow.python.training import saver as saver_module  # pylint: disable=import-outside-toplevel

    clock = _SimulatedClock(start)
    modules = (saver_module, checkpoint_management)
    originals = [module.time for module in modules]
    for module in modules:
        module.time = clock
    try:
        yield clock
    finally:
        for module, original in zip(modules, originals):
            module.time = original


def stamp(prefix: Path, when: float) -> None:
    """Set the mtime of every file of checkpoint `prefix` (and the state file) to `when`."""
    for path in prefix.parent.glob(prefix.name + ".*"):
        os.utime(path, (when, when))
    state = prefix.parent / "checkpoint"
    if state.exists():
        os.utime(state, (when, when))


def record_save_times(run_dir: Path, saved_at: dict[str, float]) -> None:
    """Write the simulated save times of the checkpoints the state file lists into it
    (`all_model_checkpoint_timestamps`, in its own order) and date the state file by the latest one.

    CheckpointManager records these itself; the v1 Saver records none. The sample runs carry them so that
    their timeline survives a git clone, which resets every file's mtime.
    """
    from google.protobuf import text_format  # pylint: disable=import-outside-toplevel
    from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState  # pylint: disable=import-outside-toplevel

    path = run_dir / "checkpoint"
    state = text_format.Parse(path.read_text(), CheckpointState())
    del state.all_model_checkpoint_timestamps[:]
    state.all_model_checkpoint_timestamps.extend(saved_at[os.path.basename(p)] for p in state.all_model_checkpoint_paths)
    path.write_text(text_format.MessageToString(state))
    when = saved_at[os.path.basename(state.model_checkpoint_path)]
    os.utime(path, (when, when))


def check_kept(run_dir: Path, stem: str, expected: list[int]) -> None:
    found = sorted(int(p.name[len(stem) + 1:-len(".index")]) for p in run_dir.glob(f"{stem}-*.index"))
    if found != expected:
        raise CkptError(
            f"Generator self-check failed in '{run_dir}': checkpoints {found} on disk, expected "
            f"{expected}. TensorFlow's keep_checkpoint_every_n_hours logic may have changed.")


def expected_v1_kept(spec: CnnSpec) -> list[int]:
    """Which steps tf.compat.v1.train.Saver leaves on disk (saver.py `_MaybeDeleteOldCheckpoints`)."""
    steps = list(range(spec.save_every, spec.steps + 1, spec.save_every))
    interval, keep = spec.minutes_per_save * MINUTE, spec.keep_every_n_hours * 3600
    next_keep, kept = keep, []  # measured from the Saver's construction at t=0
    for k, step in enumerate(steps[:-spec.max_to_keep], start=1):
        if k * interval > next_keep:
            kept.append(step)
            next_keep += keep
    return kept + steps[-spec.max_to_keep:]
