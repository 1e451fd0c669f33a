"""freeze.py on a real trained run: the frozen graph computes x.W + b, and checkpoint folders stay untouched."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
from conftest import copy_run, snapshot
from graph_fixtures import frozen_softmax, gb, mnist_data, softmax  # noqa: F401 - fixtures

from ckptlib import errors
from ckptlib.cli import graph as cli_graph, report
from ckptlib.errors import ForbiddenOps, GraphTooLarge, NodeNotFound, UnsafeDestination
from ckptlib.evaluate import freeze as freeze_module
from ckptlib.evaluate.freeze import freeze
from ckptlib.graph.metagraph import load_meta_graph_def


def _load(gb, path):
    graph_def = gb.v1.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    return graph_def


def test_frozen_graph_is_constants_and_matches_weights(gb, softmax, frozen_softmax, mnist_data):
    graph_def = _load(gb, frozen_softmax.output)
    ops = {n.op for n in graph_def.node}
    assert not ops & {"VarHandleOp", "VariableV2", "ReadVariableOp", "SaveV2", "RestoreV2", "ApplyGradientDescent"}
    assert frozen_softmax.num_nodes == len(graph_def.node)
    assert frozen_softmax.bytes == os.path.getsize(frozen_softmax.output)
    assert frozen_softmax.outputs == (gb.LOGITS, "accuracy") and frozen_softmax.num_variables == 2
    assert frozen_softmax.checkpoint == softmax["prefixes"][-1]
    graph = gb.tf.Graph()
    with graph.as_default():
        gb.v1.import_graph_def(graph_def, name="")
    images = mnist_data.images[:500].reshape(500, 784).astype(np.float32) / 255.0
    with gb.v1.Session(graph=graph) as sess:
        logits = sess.run(gb.LOGITS + ":0", {"x:0": images, "Placeholder:0": 1.0})
    np.testing.assert_allclose(logits, images @ softmax["weights"] + softmax["biases"], rtol=1e-4, atol=1e-4)


def test_refuses_checkpoint_folders_and_leaves_them_identical(softmax, tmp_path):
    run = copy_run(softmax["run"], tmp_path)
    other = tmp_path / "other_run"
    other.mkdir()
    (other / "checkpoint").write_text('model_checkpoint_path: "x"\n')
    before, before_other = snapshot(run), snapshot(other)
    for out in (os.path.join(run, "frozen.pb"), os.path.join(run, "export", "frozen.pb"), str(other / "m.pb"),
                str(tmp_path / "model.ckpt-300.index")):
        with pytest.raises(UnsafeDestination, match="Refusing to write"):
            freeze(run, "softmax_linear/add", out)
    (tmp_path / "out").mkdir()
    result = freeze(run, "softmax_linear/add", str(tmp_path / "out" / "m.pb"))
    assert os.listdir(tmp_path / "out") == ["m.pb"] and result.output == str(tmp_path / "out" / "m.pb")
    assert snapshot(run) == before and snapshot(other) == before_other


def test_unknown_output_lists_close_matches(softmax, tmp_path):
    with pytest.raises(NodeNotFound, match=r"no op named 'softmax_linear/ad'.*Close matches: softmax_linear/add"):
        freeze(softmax["prefixes"][-1], "softmax_linear/ad", str(tmp_path / "m.pb"))
    with pytest.raises(NodeNotFound, match="No output node"):
        freeze(softmax["prefixes"][-1], " , ", str(tmp_path / "m.pb"))
    assert not (tmp_path / "m.pb").exists()


def test_missing_meta_is_explained(softmax, tmp_path):
    no_meta = softmax["prefixes"][1]  # saved with write_meta_graph=False
    with pytest.raises(errors.NotFound, match=r"model.ckpt-200.meta is missing.*Other graphs.*model.ckpt-100.meta"):
        freeze(no_meta, "softmax_linear/add", str(tmp_path / "m.pb"))
    result = freeze(no_meta, "softmax_linear/add", str(tmp_path / "m.pb"), meta=softmax["prefixes"][0] + ".meta")
    assert result.checkpoint == no_meta


def test_device_pins_are_cleared_and_reported(gb, softmax, tmp_path):
    run = copy_run(softmax["run"], tmp_path)
    meta = os.path.join(run, "model.ckpt-300.meta")
    proto = load_meta_graph_def(meta)
    for node in proto.graph_def.node:
        if node.name.startswith("softmax_linear/"):
            node.device = "/job:worker/replica:0/task:0/device:GPU:0"
    with open(meta, "wb") as handle:
        handle.write(proto.SerializeToString())
    result = freeze(run, gb.LOGITS, str(tmp_path / "m.pb"))
    assert result.cleared_devices == ("/job:worker/replica:0/task:0/device:GPU:0",)
    assert not any(n.device for n in _load(gb, result.output).node)


def test_size_limit_checked_before_freezing(softmax, tmp_path, monkeypatch):
    # In this process (freeze_graph_def is what the child runs): the patched limit does not cross into a child.
    monkeypatch.setattr(freeze_module, "PROTOBUF_LIMIT", 10_000)  # the 784x10 kernel alone is 31,360 bytes
    with pytest.raises(GraphTooLarge, match="2 GB limit"):
        freeze_module.freeze_graph_def(softmax["prefixes"][-1], "softmax_linear/add")


def test_hostile_meta_graph_is_not_run(gb, tmp_path):
    target = tmp_path / "pwned.txt"
    run = tmp_path / "run"
    graph = gb.tf.Graph()
    with graph.as_default():
        w = gb.v1.get_variable("w", [3], initializer=gb.v1.ones_initializer())
        with gb.tf.control_dependencies([gb.tf.io.write_file(str(target), "pwned")]):
            gb.tf.identity(w, name="out")
        saver = gb.v1.train.Saver()
        with gb.v1.Session(graph=graph) as sess:
            sess.run(gb.v1.global_variables_initializer())
            prefix = saver.save(sess, str(run / "model.ckpt"))
    with pytest.raises(ForbiddenOps, match=r"WriteFile"):
        freeze(prefix, "out", str(tmp_path / "m.pb"))
    assert not target.exists() and not (tmp_path / "m.pb").exists()


def test_freeze_doc_and_cli_handler(softmax, tmp_path):
    parser = argparse.ArgumentParser()
    cli_graph.add_subcommands(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli.pb"
    args = parser.parse_args(["freeze", softmax["run"], "--outputs", "softmax_linear/add,accuracy", "--out", str(out)])
    doc, text = cli_graph.HANDLERS[args.command](args)
    assert json.loads(json.dumps(doc))["output"] == str(out) and doc["num_nodes"] > 0
    assert doc["bytes"] == out.stat().st_size and doc["outputs"] == ["softmax_linear/add", "accuracy"]
    assert str(out) in text
    assert set(report.freeze_doc(freeze(softmax["run"], "accuracy", str(out)))) >= {"output", "num_nodes", "bytes"}


def test_ref_and_partitioned_variables(gb, tmp_path):
    """Old-style VariableV2 (use_resource=False) and a 3-way partitioned kernel freeze to the same values."""
    tf, v1 = gb.tf, gb.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name="x")
        ref = v1.get_variable("ref_w", [784, 10], use_resource=False, initializer=v1.random_normal_initializer(seed=1))
        part = v1.get_variable("part_w", [784, 10], partitioner=v1.fixed_size_partitioner(3),
                               initializer=v1.random_normal_initializer(seed=2))
        tf.add(tf.matmul(x, ref), tf.matmul(x, part), name="logits")
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "run" / "model.ckpt"), global_step=1)
            expected = sess.run(ref) + sess.run(part.as_tensor())
    (tmp_path / "out").mkdir()
    result = freeze(prefix, "logits", str(tmp_path / "out" / "m.pb"))
    assert result.num_variables == 4  # one VariableV2 and three partitions
    frozen = tf.Graph()
    with frozen.as_default():
        v1.import_graph_def(_load(gb, result.output), name="")
    eye = np.eye(784, dtype=np.float32)[:20]
    with v1.Session(graph=frozen) as sess:
        np.testing.assert_allclose(sess.run("logits:0", {"x:0": eye}), expected[:20], rtol=1e-6)
