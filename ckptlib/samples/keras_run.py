"""The `mnist_keras/` sample run: a Keras 3 MLP trained by `model.fit`, saved by CheckpointManager,
ModelCheckpoint `.keras` files and `model.export`."""

# What made two generations differ, measured with Keras 3.15 / TensorFlow 2.21, and what is done about it:
# - a `.keras` file is a zip whose `model.weights.h5` entry is dated at the save (`metadata.json` and
#   `config.json` get zipfile's default 1980-01-01), and `metadata.json` holds `date_saved` in local time:
#   both are rewritten to the simulated save time (UTC);
# - `config.json` names an object shared between layers (the float32 DTypePolicy) by `shared_object_id`,
#   Python's id() of it, i.e. a memory address: renumbered 1, 2, ... in order of first appearance (the ids
#   only pair references up inside one file, keras/src/saving/serialization_lib.py);
# - `model.export` stores the variables its functions use as `_all_variables/N`, in the order of a
#   ConcreteFunction's `trainable_variables`, which come from an identity *set* (FuncGraph
#   `_watched_variables`), so the order changed from run to run: put into the model's own order during export;
# - the export's `fingerprint.pb` carries a random `uuid`: replaced by one derived from the fingerprint's
#   own hashes (same content, same uuid);
# - the export's `assets/` folder is empty, and git keeps no empty folders: removed, so that the folder
#   generated is the folder a clone gets.
# The weights inside the zip (`model.weights.h5`) and the CheckpointManager files were identical already.

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ckptlib.errors import CkptError

from .clock import check_kept, simulated_clock, stamp
from .data import Mnist
from .progress import progress
from .specs import (KERAS_BATCH, KERAS_EPOCHS, KERAS_HIDDEN, KERAS_LR, KERAS_MAX_TO_KEEP, KERAS_MINUTES_PER_EPOCH,
                    KERAS_SEED, KERAS_TRAIN, MINUTE)

KERAS_DATE_FORMAT = "%Y-%m-%d@%H:%M:%S"  # keras/src/saving/saving_lib.py `_serialize_model_as_json`


class KerasEpoch(NamedTuple):
    """What the end of one training epoch saved, and how the model did then."""

    epoch: int
    checkpoint: str  # the manager's prefix name, e.g. "ckpt-3"
    keras_file: str  # e.g. "model.03.keras"
    saved_at: float  # simulated unix time
    loss: float  # training loss over the epoch, as model.fit reports it
    accuracy: float  # on the 10,000 MNIST test images


def pin_keras_archive(path: Path, when: float) -> None:
    """Rewrite the `.keras` zip at `path` with every entry dated `when` (UTC) and `metadata.json`'s
    `date_saved` set to it; the entries' order, bytes and compression stay Keras's own."""
    stamp_utc = time.gmtime(when)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, payload in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(payload)
                metadata["date_saved"] = time.strftime(KERAS_DATE_FORMAT, stamp_utc)
                payload = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                payload = renumber_shared_objects(payload.decode()).encode()
            pinned = zipfile.ZipInfo(info.filename, date_time=stamp_utc[:6])
            pinned.compress_type, pinned.external_attr = info.compress_type, info.external_attr
            archive.writestr(pinned, payload)
    os.utime(path, (when, when))


def renumber_shared_objects(config_json: str) -> str:
    """Replace each `"shared_object_id": <memory address>` by 1, 2, ... in order of first appearance."""
    numbers: dict[str, int] = {}

    def number(match: re.Match) -> str:
        return f'"shared_object_id": {numbers.setdefault(match.group(1), len(numbers) + 1)}'

    return re.sub(r'"shared_object_id": (\d+)', number, config_json)


@contextlib.contextmanager
def export_in_model_order(model):
    """Meanwhile, `model.export` lists the variables its functions use in `model.variables`' order."""
    from keras.src.export import saved_model_export_archive as archive  # pylint: disable=import-outside-toplevel

    original = archive._list_variables_used_by_fns
    position = {id(variable.value): i for i, variable in enumerate(model.variables)}

    def in_model_order(fns):
        lists = original(fns)
        strangers = [v.name for found in lists for v in found if id(v) not in position]
        if strangers:
            raise CkptError(f"Generator self-check failed: model.export uses variables the model does not "
                            f"list ({', '.join(strangers)}); their order would not be reproducible.")
        return tuple(sorted(found, key=lambda v: position[id(v)]) for found in lists)

    archive._list_variables_used_by_fns = in_model_order
    try:
        yield
    finally:
        archive._list_variables_used_by_fns = original


def pin_fingerprint(export_dir: Path) -> None:
    """Replace the random `uuid` of a SavedModel's `fingerprint.pb` by one derived from its hashes.

    The message class comes from protobuf's default pool, where TensorFlow registered it when it wrote the
    file (tensorflow/core/protobuf/fingerprint.proto)."""
    from google.protobuf import descriptor_pool, message_factory  # pylint: disable=import-outside-toplevel

    path = export_dir / "fingerprint.pb"
    message_class = message_factory.GetMessageClass(
        descriptor_pool.Default().FindMessageTypeByName("tensorflow.FingerprintDef"))
    fingerprint = message_class.FromString(path.read_bytes())
    hashes = (fingerprint.saved_model_checksum, fingerprint.graph_def_program_hash, fingerprint.signature_def_hash,
              fingerprint.saved_object_graph_hash, fingerprint.checkpoint_hash)
    fingerprint.uuid = str(uuid.uuid5(uuid.NAMESPACE_OID, ".".join(map(str, hashes))).int)
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def stamp_files(folder: Path, when: float) -> None:
    """Set the mtime of every file under `folder` to `when`."""
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


def _accuracy(model, data: Mnist) -> float:
    logits = np.asarray(model(data.test_x, training=False))
    return float(np.mean(np.argmax(logits, axis=1) == data.test_y))


def make_keras(tf, run_dir: Path, data: Mnist, start: float) -> dict:
    """Train the MLP for KERAS_EPOCHS epochs under the simulated clock; save at each epoch's end."""
    import keras  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(KERAS_SEED)
    order = np.random.RandomState(KERAS_SEED).permutation(len(data.train_y))[:KERAS_TRAIN]
    model = keras.Sequential([
        keras.Input((784,), name="pixels"),
        keras.layers.Dense(KERAS_HIDDEN, activation="relu", name="hidden"),
        keras.layers.Dense(10, name="out"),
    ], name="mlp")
    optimizer = keras.optimizers.Adam(learning_rate=KERAS_LR)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    (run_dir / "epochs").mkdir(parents=True)
    epochs: list[KerasEpoch] = []

    def saved_at(epoch: int) -> float:
        return start + epoch * KERAS_MINUTES_PER_EPOCH * MINUTE

    with simulated_clock(start) as clock:
        manager = tf.train.CheckpointManager(checkpoint, str(run_dir / "manager"), max_to_keep=KERAS_MAX_TO_KEEP)

        class SaveAtEpochEnd(keras.callbacks.Callback):
            """After ModelCheckpoint (it comes first in the list): pin its file, save the manager's."""

            def on_epoch_end(self, epoch, logs=None):
                clock.now = saved_at(epoch + 1)
                keras_file = run_dir / "epochs" / f"model.{epoch + 1:02d}.keras"
                pin_keras_archive(keras_file, clock.now)
                prefix = Path(manager.save())
                stamp(prefix, clock.now)
                epochs.append(KerasEpoch(epoch + 1, prefix.name, keras_file.name, clock.now, float(logs["loss"]),
                                         _accuracy(self.model, data)))

        model.fit(data.train_x[order], data.train_y[order], batch_size=KERAS_BATCH, epochs=KERAS_EPOCHS,
                  shuffle=False, verbose=0, callbacks=[
                      keras.callbacks.ModelCheckpoint(str(run_dir / "epochs" / "model.{epoch:02d}.keras")),
                      SaveAtEpochEnd()])
    with export_in_model_order(model):
        model.export(str(run_dir / "export"), verbose=False)
    pin_fingerprint(run_dir / "export")
    if not any((run_dir / "export" / "assets").iterdir()):
        (run_dir / "export" / "assets").rmdir()
    stamp_files(run_dir / "export", saved_at(KERAS_EPOCHS))
    check_kept(run_dir / "manager", "ckpt", list(range(KERAS_EPOCHS - KERAS_MAX_TO_KEEP + 1, KERAS_EPOCHS + 1)))
    progress(f"mnist_keras: {KERAS_EPOCHS} epochs, loss {epochs[-1].loss:.4f}, "
             f"test accuracy {epochs[-1].accuracy:.2%}")
    return {"epochs": epochs, "kept": [e.checkpoint for e in epochs[-KERAS_MAX_TO_KEEP:]],
            "accuracy": epochs[-1].accuracy}
