"""The public verbs of `import ckptlib`: their docstring examples run, and they agree with TensorFlow's reader."""

from __future__ import annotations

import doctest
import importlib
import os

import numpy as np
import pytest

import ckptlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules whose `>>>` examples run against the bundled sample_checkpoints/ from the repository root.
DOCTESTED = ["ckptlib", "ckptlib.api", "ckptlib.formats.base", "ckptlib.formats.sniff", "ckptlib.formats.v2bundle",
             "ckptlib.runs.resolve", "ckptlib.compare.mapping"]


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"ckptlib": ckptlib}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0


def test_every_verb_is_exported_and_documented():
    for verb in ckptlib.__all__:
        obj = getattr(ckptlib, verb)
        assert obj.__doc__ and (">>>" in obj.__doc__ or verb == "CkptError"), verb
    with pytest.raises(AttributeError):
        ckptlib.no_such_verb  # noqa: B018


def test_verbs_agree_with_tensorflow(tmp_path):
    import tensorflow as tf

    w = tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4))
    ckpt = tf.train.Checkpoint(w=w)
    first = ckpt.save(str(tmp_path / "ckpt"))
    w.assign(w * 2.0)
    second = ckpt.save(str(tmp_path / "ckpt"))
    key = "w/.ATTRIBUTES/VARIABLE_VALUE"
    reference = tf.train.load_checkpoint(second).get_tensor(key)

    assert np.array_equal(ckptlib.read_tensor(second, key), reference)
    streamed = np.concatenate([c.copy() for c in ckptlib.stream_tensor(str(tmp_path), key, chunk_elements=5)])
    assert np.array_equal(streamed, reference.reshape(-1))  # the run folder means its latest checkpoint
    assert [e.step for e in ckptlib.open_run(str(tmp_path)).checkpoints] == [1, 2]

    d = ckptlib.diff(first, second)
    row = next(v for v in d.variables if v.name == key)
    before = tf.train.load_checkpoint(first).get_tensor(key).astype(np.float64)
    assert row.status == "changed"
    assert row.rel_change == pytest.approx(np.linalg.norm(reference - before) / np.linalg.norm(before))
    points = ckptlib.trends(str(tmp_path), [key]).get(key).points
    assert [p.l2 for p in points] == pytest.approx([np.linalg.norm(before), np.linalg.norm(reference)])


def test_verbs_raise_ckpt_errors_naming_the_file(tmp_path):
    bad = tmp_path / "model.ckpt-1.index"
    bad.write_bytes(b"not an index at all")
    with pytest.raises(ckptlib.CkptError, match="model.ckpt-1"):
        ckptlib.open_checkpoint(str(bad))
    with pytest.raises(ckptlib.CkptError, match="nowhere"):
        ckptlib.open_run(str(tmp_path / "nowhere"))
