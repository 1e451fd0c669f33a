"""Freezing never runs the checkpoint's own graph: values come from the checkpoint named, read by ckptlib, and a
.meta whose saver reads another checkpoint (or writes a file) is not obeyed."""

from __future__ import annotations

import os

import numpy as np
import pytest
from graph_fixtures import gb  # noqa: F401 - fixture

from ckptlib import errors
from ckptlib.evaluate.freeze import freeze, freeze_graph_def
from ckptlib.graph.metagraph import load_meta_graph_def


def _saved(gb, folder, value, *, shape=(3,), var_list=None, partitions: int = 1) -> str:
    """x * W saved with W filled with `value`; returns the prefix (a .meta beside it)."""
    graph = gb.tf.Graph()
    with graph.as_default():
        x = gb.v1.placeholder(gb.tf.float32, [None, shape[0]], name="x")
        partitioner = gb.v1.fixed_size_partitioner(partitions) if partitions > 1 else None
        w = gb.v1.get_variable("W", list(shape), initializer=gb.v1.constant_initializer(value), partitioner=partitioner)
        gb.tf.multiply(x, w if partitions == 1 else gb.tf.concat(list(w), 0), name="out")
        saver = gb.v1.train.Saver(var_list=var_list(w) if var_list else None)
        with gb.v1.Session(graph=graph) as sess:
            sess.run(gb.v1.global_variables_initializer())
            return saver.save(sess, os.path.join(str(folder), "model.ckpt"))


def _rewrite_meta(prefix: str, change) -> None:
    meta = load_meta_graph_def(prefix + ".meta")
    change(meta)
    with open(prefix + ".meta", "wb") as handle:
        handle.write(meta.SerializeToString())


def _frozen_out(gb, graph_def, width: int = 3) -> np.ndarray:
    graph = gb.tf.Graph()
    with graph.as_default():
        gb.v1.import_graph_def(graph_def, name="")
    with gb.v1.Session(graph=graph) as sess:
        return sess.run("out:0", {"x:0": np.ones((1, width), np.float32)})[0]


def _string_const(gb, meta, name: str, text: str):
    node = meta.graph_def.node.add(name=name, op="Const")
    node.attr["dtype"].type = gb.tf.string.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(gb.tf.make_tensor_proto(text))
    return node


def test_a_restore_op_reading_another_checkpoint_is_not_obeyed(gb, tmp_path):
    other = _saved(gb, tmp_path / "other", 42.0)
    prefix = _saved(gb, tmp_path / "run", 1.0)

    def hostile(meta):  # RestoreV2 reads a fixed path instead of the file name the Saver feeds
        _string_const(gb, meta, "evil_path", other)
        restore = next(n for n in meta.graph_def.node if n.op == "RestoreV2")
        restore.input[0] = "evil_path"
    _rewrite_meta(prefix, hostile)
    graph = gb.tf.Graph()  # the .meta is hostile indeed: TensorFlow's own restore obeys it
    with graph.as_default():
        saver = gb.v1.train.import_meta_graph(prefix + ".meta")
        with gb.v1.Session(graph=graph) as sess:
            saver.restore(sess, prefix)
            assert sess.run("out:0", {"x:0": np.ones((1, 3), np.float32)}).tolist() == [[42.0] * 3]
    others = [os.path.join(tmp_path, "other", n) for n in os.listdir(tmp_path / "other")]
    for path in others + [str(tmp_path / "control")]:
        if path.endswith("control"):
            open(path, "w").close()
        os.utime(path, (1, os.stat(path).st_mtime))
    (tmp_path / "out").mkdir()
    result = freeze(prefix, "out", str(tmp_path / "out" / "m.pb"))
    graph_def = gb.v1.GraphDef.FromString((tmp_path / "out" / "m.pb").read_bytes())
    assert result.num_variables == 1 and _frozen_out(gb, graph_def).tolist() == [1.0] * 3
    assert not {n.op for n in graph_def.node} & {"RestoreV2", "SaveV2", "VarHandleOp", "VariableV2"}
    with open(tmp_path / "control", "rb") as handle:
        handle.read()
    if os.stat(tmp_path / "control").st_atime != 1:  # this file system records reads: the other folder had none
        assert [os.stat(p).st_atime for p in others] == [1] * len(others)


def test_no_saver_or_init_op_runs_even_when_it_writes_files(gb, tmp_path):
    prefix = _saved(gb, tmp_path / "run", 3.0)
    target = tmp_path / "pwned.txt"

    def hostile(meta):
        _string_const(gb, meta, "evil/name", str(target))
        _string_const(gb, meta, "evil/text", "pwned")
        meta.graph_def.node.add(name="evil/write", op="WriteFile", input=["evil/name", "evil/text"])
        for node in meta.graph_def.node:
            if node.name == meta.saver_def.restore_op_name or node.name.endswith("/Assign") or node.op == "NoOp":
                node.input.append("^evil/write")  # the restore op and every initialiser now write a file first
    _rewrite_meta(prefix, hostile)
    frozen = freeze_graph_def(prefix, "out")
    assert _frozen_out(gb, frozen.graph_def).tolist() == [3.0] * 3 and not target.exists()
    assert "evil/write" not in {n.name for n in frozen.graph_def.node}


def test_keys_come_from_the_saver_even_when_renamed(gb, tmp_path):
    prefix = _saved(gb, tmp_path / "run", 5.0, var_list=lambda w: {"renamed/kernel": w})
    from ckptlib.formats import open_checkpoint

    assert [v.name for v in open_checkpoint(prefix).variables] == ["renamed/kernel"]
    assert _frozen_out(gb, freeze_graph_def(prefix, "out").graph_def).tolist() == [5.0] * 3


def test_partitions_without_a_saver_def_come_from_the_collection(gb, tmp_path):
    prefix = _saved(gb, tmp_path / "run", 0.0, shape=(7,), partitions=3)
    from ckptlib.formats import open_checkpoint

    values = np.arange(7, dtype=np.float32)  # distinct values: a slice in the wrong place shows
    import tfbuild

    tfbuild.raw_bundle(prefix, {"W": values})  # the same key, rewritten by SaveV2 with known values
    _rewrite_meta(prefix, lambda meta: meta.ClearField("saver_def"))
    assert open_checkpoint(prefix).read("W").tolist() == values.tolist()
    frozen = freeze_graph_def(prefix, "out")
    assert frozen.num_variables == 3 and _frozen_out(gb, frozen.graph_def, 7).tolist() == values.tolist()


def test_another_models_checkpoint_or_a_missing_key_is_a_clear_error(gb, tmp_path):
    narrow = _saved(gb, tmp_path / "narrow", 1.0)
    wide = _saved(gb, tmp_path / "wide", 1.0, shape=(4,))
    with pytest.raises(errors.CorruptCheckpoint, match=r"graph variable 'W' is float32 \[4\].*holds float32 \[3\]"):
        freeze_graph_def(narrow, "out", meta=wide + ".meta")
    renamed = _saved(gb, tmp_path / "renamed", 1.0, var_list=lambda w: {"elsewhere": w})
    with pytest.raises(errors.VariableNotFound, match="saved as 'W', which the checkpoint does not hold"):
        freeze_graph_def(renamed, "out", meta=narrow + ".meta")
