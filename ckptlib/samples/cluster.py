"""The `from_cluster/` sample run: a real CNN run, then damaged the way a half-finished copy would be."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .clock import check_kept, record_save_times
from .data import Mnist
from .progress import progress
from .specs import CLUSTER_RUN, MINUTE, OTHER_MACHINE
from .v1_runs import train_cnn


def make_from_cluster(tf, run_dir: Path, data: Mnist, start: float, earlier_attempt: Path) -> dict:
    run_dir.mkdir(parents=True)
    # An earlier attempt of the job reached step 1000 before it was restarted from scratch in the
    # same folder: its last checkpoint stays behind, listed by no state file (a true orphan).
    for path in earlier_attempt.glob("model.ckpt-1000.*"):
        shutil.copy2(path, run_dir / path.name)
    train_cnn(tf, CLUSTER_RUN, run_dir, data, start, "from_cluster", relative_paths=False)
    check_kept(run_dir, "model.ckpt", [200, 300, 400, 500, 600, 700, 1000])
    # The state file as the cluster's Saver (max_to_keep=5) left it, with the cluster's paths.
    listed = [300, 400, 500, 600, 700]
    state = run_dir / "checkpoint"
    lines = [f'model_checkpoint_path: "{OTHER_MACHINE}/model.ckpt-{listed[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{OTHER_MACHINE}/model.ckpt-{s}"' for s in listed]
    state.write_text("\n".join(lines) + "\n")
    # ... with the save times the generator records for every Saver run (the v1 Saver itself records none).
    record_save_times(run_dir, {f"model.ckpt-{s}": start + s / CLUSTER_RUN.save_every * CLUSTER_RUN.minutes_per_save
                                * MINUTE for s in listed})
    for path in run_dir.glob("model.ckpt-700.*"):  # the copy started before step 700 was written
        path.unlink()
    (run_dir / "model.ckpt-500.data-00000-of-00001").unlink()  # this file failed to copy
    when = start + 6 * CLUSTER_RUN.minutes_per_save * MINUTE
    os.utime(state, (when, when))
    progress("from_cluster: state file rewritten, model.ckpt-700 and one data shard of 500 removed")
    return {"listed": listed}
