"""The committed Keras 3 sample run `sample_checkpoints/mnist_keras/`, checked with TensorFlow's and Keras's own readers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(REPO, "sample_checkpoints", "mnist_keras")
MANAGER = os.path.join(RUN, "manager")
EPOCHS = os.path.join(RUN, "epochs")
EXPORT = os.path.join(RUN, "export")
KEPT = {"ckpt-3": 3, "ckpt-4": 4, "ckpt-5": 5}  # max_to_keep=3 of five epochs; ckpt-N is epoch N
START = 1709715600.0  # 2024-03-06T09:00:00Z, the run's simulated start; an epoch lasts 2 minutes
STEPS_PER_EPOCH = 120  # 12,000 images, batch 100
WEIGHTS = "optimizer/_trainable_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"  # hidden kernel, bias; out kernel, bias
SHAPES = [[784, 32], [32], [32, 10], [10]]

pytestmark = pytest.mark.skipif(not os.path.isdir(RUN), reason="sample_checkpoints/mnist_keras not generated")


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


@pytest.fixture(scope="module")
def history():
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")  # write nothing into the repository
    proc = subprocess.run([sys.executable, "-m", "ckptlib", "history", MANAGER, "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _weights(reader) -> list[np.ndarray]:
    return [reader.get_tensor(WEIGHTS.format(i)) for i in range(len(SHAPES))]


def test_history_lists_the_kept_checkpoints_with_their_simulated_times(history):
    assert history["problem"] is None
    rows = history["checkpoints"]
    assert [os.path.basename(r["prefix"]) for r in rows] == list(KEPT)
    assert [r["step"] for r in rows] == list(KEPT.values())
    assert all(r["in_state"] and r["complete"] and not r["has_meta"] and r["problem"] is None for r in rows)
    assert [r["latest"] for r in rows] == [False, False, True]
    # The state file's timestamps (the simulated clock), so a fresh clone still shows the true timeline.
    assert [r["mtime"] for r in rows] == [START + 120.0 * epoch for epoch in KEPT.values()]


def test_state_file_agrees_with_tensorflow(tf):
    state = tf.train.get_checkpoint_state(MANAGER)
    assert os.path.basename(state.model_checkpoint_path) == "ckpt-5"
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == list(KEPT)
    assert list(state.all_model_checkpoint_timestamps) == [START + 120.0 * e for e in KEPT.values()]
    assert not os.path.exists(os.path.join(MANAGER, "ckpt-2.index"))  # rotated out


@pytest.mark.parametrize("name", list(KEPT))
def test_each_checkpoint_holds_the_model_of_its_epoch(tf, history, name):
    import keras

    epoch = KEPT[name]
    (row,) = [r for r in history["checkpoints"] if os.path.basename(r["prefix"]) == name]
    reader = tf.train.load_checkpoint(row["prefix"])
    shapes = reader.get_variable_to_shape_map()
    assert [shapes[WEIGHTS.format(i)] for i in range(len(SHAPES))] == SHAPES
    assert reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == epoch
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == epoch * STEPS_PER_EPOCH
    assert sum(1 for k in shapes if k.startswith("optimizer/_variables/")) == 2 * len(SHAPES)  # Adam's m and v
    # ModelCheckpoint saved the same model at the same epoch's end.
    model = keras.saving.load_model(os.path.join(EPOCHS, f"model.{epoch:02d}.keras"), compile=False)
    assert [layer.name for layer in model.layers] == ["hidden", "out"] and model.name == "mlp"
    for stored, from_keras in zip(_weights(reader), model.get_weights(), strict=True):
        np.testing.assert_array_equal(stored, from_keras)


def test_export_holds_the_last_checkpoints_weights(tf):
    last = _weights(tf.train.load_checkpoint(os.path.join(MANAGER, "ckpt-5")))
    loaded = tf.saved_model.load(EXPORT)
    assert [v.shape.as_list() for v in loaded.variables] == SHAPES
    for exported, stored in zip(loaded.variables, last, strict=True):
        np.testing.assert_array_equal(exported.numpy(), stored)
    bundle = tf.train.load_checkpoint(os.path.join(EXPORT, "variables", "variables"))
    for i, stored in enumerate(last):
        np.testing.assert_array_equal(bundle.get_tensor(f"variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"), stored)
    # And it computes with them: the serving signature gives the logits of the last checkpoint's weights.
    images = np.random.RandomState(0).rand(4, 784).astype(np.float32)
    expected = np.maximum(images @ last[0] + last[1], 0) @ last[2] + last[3]
    logits = loaded.signatures["serving_default"](pixels=tf.constant(images))["output_0"].numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_keras_files_carry_their_simulated_save_time_not_the_generators_clock():
    for epoch in range(1, 6):
        with zipfile.ZipFile(os.path.join(EPOCHS, f"model.{epoch:02d}.keras")) as archive:
            minute = 2 * epoch
            assert {info.date_time for info in archive.infolist()} == {(2024, 3, 6, 9, minute, 0)}
            metadata = json.loads(archive.read("metadata.json"))
            assert metadata["date_saved"] == f"2024-03-06@09:{minute:02d}:00"
            # Shared objects are numbered 1, 2, ... rather than by the memory address Keras uses.
            ids = set(re.findall(r'"shared_object_id": (\d+)', archive.read("config.json").decode()))
            assert ids == {str(n) for n in range(1, len(ids) + 1)}
