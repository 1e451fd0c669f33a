"""Shared fixtures: real checkpoints written by TensorFlow, built once per session under pytest's tmp dirs.

Session-scoped runs are shared and must never be modified by a test: a test that damages a run
first copies it into its own tmp_path with `copy_run`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))  # tfbuild sits beside the tests
from pg_cluster import fresh_pg_url, postgres_url  # noqa: E402,F401 - fixtures for the review store tests
from page_links import restored_root  # noqa: E402,F401 - the page tests' fixture


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # Importing TensorFlow makes Keras write ~/.keras/keras.json when it is missing: point it at
    # pytest's temporary folder so that the suite writes nothing outside it (subprocesses inherit this).
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None and "KERAS_HOME" not in os.environ:
        os.environ["KERAS_HOME"] = str(factory.mktemp("keras_home", numbered=False))
    # The review store's default SQLite file lives in the user's data folder: keep the suite's in tmp.
    if factory is not None:
        os.environ["CKPTLIB_DATA_DIR"] = str(factory.mktemp("ckptlib_data", numbered=False))
        os.environ.pop("CKPTLIB_DB", None)
        # The result cache too (each test that cares about hits and misses points it somewhere of its own).
        os.environ["CKPTLIB_CACHE"] = str(factory.mktemp("ckptlib_cache", numbered=False) / "results.sqlite3")


def _build():
    import tfbuild  # imports TensorFlow: only when a fixture that needs it runs

    return tfbuild


def copy_run(src: str, dst_parent, name: str | None = None) -> str:
    """Copy a run folder (file times kept) into dst_parent; returns the copy's path."""
    dst = os.path.join(str(dst_parent), name or os.path.basename(src))
    shutil.copytree(src, dst)
    return dst


def snapshot(folder) -> dict[str, tuple]:
    """Every entry under `folder`: relative name -> (kind, size, mtime_ns, sha256 of the bytes)."""
    result = {}
    for base, dirs, files in os.walk(str(folder)):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, str(folder))
            if name in files:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                result[rel] = ("file", st.st_size, st.st_mtime_ns, digest)
            else:
                result[rel] = ("dir", None, st.st_mtime_ns, None)
    return result


@pytest.fixture(scope="session")
def tfb():
    """The tfbuild helpers (TensorFlow imported)."""
    return _build()


@pytest.fixture(scope="session")
def saver_abs(tmp_path_factory, tfb):
    """v1 Saver, max_to_keep=3, 6 saves, absolute paths in the state file (TF's default)."""
    run = str(tmp_path_factory.mktemp("saver_abs") / "run")
    saved = tfb.saver_run(run, num_saves=6, max_to_keep=3)
    return run, saved


@pytest.fixture(scope="session")
def saver_rel(tmp_path_factory, tfb):
    """Like saver_abs but with save_relative_paths=True, so copies of it are not 'moved' runs."""
    run = str(tmp_path_factory.mktemp("saver_rel") / "run")
    saved = tfb.saver_run(run, num_saves=6, max_to_keep=3, save_relative_paths=True)
    return run, saved


@pytest.fixture(scope="session")
def nostep_run(tmp_path_factory, tfb):
    """One save without global_step= (prefix 'model.ckpt', no '-N'); the stored global_step is 7."""
    run = str(tmp_path_factory.mktemp("nostep") / "run")
    saved = tfb.saver_run(run, num_saves=1, max_to_keep=3, with_step_suffix=False, train_steps_before=4,
                          steps_per_save=3, save_relative_paths=True)
    return run, saved


@pytest.fixture(scope="session")
def restarted_run(tmp_path_factory, tfb):
    """A job restarted in the same folder: the new Saver forgets the old checkpoints -> orphans 2 and 3."""
    run = str(tmp_path_factory.mktemp("restarted") / "run")
    tfb.saver_run(run, num_saves=3, max_to_keep=2, save_relative_paths=True)
    tfb.saver_run(run, num_saves=2, max_to_keep=2, save_relative_paths=True, train_steps_before=3)
    return run


@pytest.fixture(scope="session")
def manager_plain(tmp_path_factory, tfb):
    """TF2 CheckpointManager(max_to_keep=2), 5 saves at steps 10..50, with a Keras Adam optimizer."""
    run = str(tmp_path_factory.mktemp("manager_plain") / "run")
    saved = tfb.manager_run(run, num_saves=5, max_to_keep=2, with_optimizer=True)
    return run, saved


@pytest.fixture(scope="session")
def manager_preserved(tmp_path_factory, tfb):
    """TF2 CheckpointManager(max_to_keep=2, keep_checkpoint_every_n_hours tiny), 5 saves."""
    run = str(tmp_path_factory.mktemp("manager_preserved") / "run")
    saved = tfb.manager_run(run, num_saves=5, max_to_keep=2, keep_checkpoint_every_n_hours=1e-9)
    return run, saved


@pytest.fixture(scope="session")
def zoo(tmp_path_factory, tfb):
    """A bundle written by TF's SaveV2 holding every dtype, scalars, zero-size and string tensors."""
    folder = tmp_path_factory.mktemp("zoo")
    values = {f"zoo/{k}": v for k, v in tfb.dtype_zoo().items()}
    prefix = tfb.raw_bundle(str(folder / "zoo"), values)
    return prefix, values


@pytest.fixture(scope="session")
def sharded(tmp_path_factory, tfb):
    """A sharded v1 save over 3 CPU devices with a 3-way partitioned variable."""
    run = str(tmp_path_factory.mktemp("sharded") / "run")
    prefix, values = tfb.sharded_partitioned_run(run, num_devices=3)
    return prefix, values


@pytest.fixture(scope="session")
def tf_reader():
    """TensorFlow's own checkpoint reader: the reference every test compares against."""
    import tensorflow as tf

    return tf.train.load_checkpoint
