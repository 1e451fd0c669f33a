"""watch follows a Keras ModelCheckpoint run: each .keras file once, in epoch order, once it is stable."""

from __future__ import annotations

import numpy as np
import pytest

from ckptlib.live.watcher import RunWatcher

keras = pytest.importorskip("keras")


def test_each_keras_file_is_reported_once_by_its_epoch(tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(2, name="out")],
                             name="watched")
    model.compile(optimizer=keras.optimizers.SGD(0.1, name="sgd"), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5)), rng.normal(size=(16, 2))
    run = tmp_path / "run"
    run.mkdir()
    watcher = RunWatcher(str(run))
    events = []
    for epoch in (1, 2, 3):
        model.fit(x, y, epochs=1, verbose=0)
        model.save(run / f"model.{epoch:02d}.keras")
        (run / "model.99.keras.tmp").write_bytes(b"half")  # not a Keras file name: never looked at
        events += list(watcher.poll())  # first look: not yet stable
        events += list(watcher.poll())  # same sizes and mtimes: finished, reported
        events += list(watcher.poll())  # nothing new
    assert [e.step for e in events] == [1, 2, 3]
    assert events[0].change is None
    moved = {name for name, _ in events[-1].change.top}
    assert moved and moved <= {"watched/hidden/kernel", "watched/hidden/bias", "watched/out/kernel", "watched/out/bias"}
