"""Keras 3 models saved by tf.train.Checkpoint and exported as SavedModels: real names, kinds, pairing, parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ckptlib import errors
from ckptlib.compare.diff import diff_checkpoints
from ckptlib.compare.parity import parity
from ckptlib.compare.trends import run_trends
from ckptlib.formats import open_checkpoint
from ckptlib.runs.history import load_history

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mlp(layers=("hidden", "out"), name="sequential"):
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((6,))] + [keras.layers.Dense(4 if n != "out" else 3, name=n) for n in layers],
                             name=name)
    model.compile(optimizer=keras.optimizers.Adam(0.05, name="adam"), loss="mse")  # not adam_1 after other tests
    return model


def _fit(model, seed):
    rng = np.random.default_rng(seed)
    model.fit(rng.normal(size=(32, 6)), rng.normal(size=(32, 3)), epochs=1, batch_size=8, verbose=0)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """A CheckpointManager run of a Keras MLP: save, freeze the hidden layer, train, save; then model.export()."""
    folder = tmp_path_factory.mktemp("keras_run")
    model = _mlp()
    _fit(model, 0)
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(folder / "run"), max_to_keep=5)
    first = manager.save()
    model.layers[0].trainable = False
    model.compile(optimizer=model.optimizer, loss="mse")
    _fit(model, 1)
    second = manager.save()
    model.export(str(folder / "export"), verbose=False)
    return {"model": model, "first": first, "second": second, "export": str(folder / "export"),
            "run": str(folder / "run"), "paths": {v.path: v.numpy() for v in model.weights}}


def test_display_names_are_the_keras_paths_and_kinds_come_from_the_graph(keras_run):
    model, ckpt = keras_run["model"], open_checkpoint(keras_run["second"])
    by_display = {v.display_name: v for v in ckpt.variables}
    for weight in model.weights:
        info = by_display[weight.path]
        assert info.kind == "model", weight.path
        assert info.name.startswith("optimizer/_trainable_variables/")  # positional keys through the optimizer
        reference = tf.train.load_checkpoint(keras_run["second"]).get_tensor(info.name)
        np.testing.assert_array_equal(ckpt.read(weight.path), reference)
        np.testing.assert_array_equal(reference, weight.numpy())
    for variable in model.optimizer.variables:
        assert by_display[variable.path].kind in ("optimizer", "counter"), variable.path
    assert by_display["adam/iteration"].kind == "counter"
    assert by_display["adam/learning_rate"].kind == "optimizer"
    assert by_display["save_counter"].kind == "counter"


def test_frozen_layer_unchanged_head_changed(keras_run):
    diff = diff_checkpoints(open_checkpoint(keras_run["first"]), open_checkpoint(keras_run["second"]))
    status = {row.display_name: row.status for row in diff.variables if row.kind == "model"}
    assert status == {"sequential/hidden/kernel": "unchanged", "sequential/hidden/bias": "unchanged",
                      "sequential/out/kernel": "changed", "sequential/out/bias": "changed"}


def test_trends_by_display_name_or_key(keras_run):
    history = load_history(keras_run["run"])
    ckpt = open_checkpoint(keras_run["second"])
    key = ckpt.info("sequential/out/kernel").name
    trends = run_trends(history, ["sequential/out/kernel"])
    assert trends.get(key) is trends.get("sequential/out/kernel") is not None
    trend = trends.get(key)
    assert trend.display_name == "sequential/out/kernel" and len(trend.points) == 2
    expected = np.linalg.norm(tf.train.load_checkpoint(keras_run["second"]).get_tensor(key).astype(np.float64))
    assert trend.points[-1].l2 == pytest.approx(expected, rel=1e-12)


def test_an_inserted_layer_shifts_every_key_but_names_still_pair(tmp_path):
    small, big = _mlp(("hidden", "out")), _mlp(("hidden", "extra", "out"))
    big.get_layer("hidden").set_weights(small.get_layer("hidden").get_weights())
    paths = {}
    for label, model in (("small", small), ("big", big)):
        _fit(model, 3)
        paths[label] = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / label / "c"))
    a, b = open_checkpoint(paths["small"]), open_checkpoint(paths["big"])
    assert a.info("sequential/out/kernel").name != b.info("sequential/out/kernel").name  # the keys moved
    rows = {row.display_name: row for row in diff_checkpoints(a, b).variables if row.kind == "model"}
    assert rows["sequential/extra/kernel"].status == "added"
    assert rows["sequential/out/kernel"].status == "changed"  # paired by name although its key moved
    assert rows["sequential/out/kernel"].name_a == a.info("sequential/out/kernel").name
    assert {rows["sequential/hidden/kernel"].status, rows["sequential/out/bias"].status} <= {"changed", "unchanged"}


def test_saved_model_is_a_checkpoint_with_its_copies_marked(keras_run):
    export = open_checkpoint(keras_run["export"])
    assert export.format_name == "saved-model"
    model_rows = [v for v in export.variables if v.kind == "model" and v.copy_of is None]
    assert sorted(v.display_name for v in model_rows) == sorted(keras_run["paths"])
    for info in model_rows:
        np.testing.assert_array_equal(export.read(info.display_name), keras_run["paths"][info.display_name])
    copies = [v for v in export.variables if v.copy_of]
    assert len(copies) == len(model_rows) and all(export.info(c.copy_of).display_name == c.display_name for c in copies)


def test_parity_of_the_export_with_each_step(keras_run):
    export = open_checkpoint(keras_run["export"])
    holds = parity(diff_checkpoints(export, open_checkpoint(keras_run["second"])), "a")
    assert holds.holds and holds.identical == 4 and holds.sentence.endswith("4/4 identical")
    older = parity(diff_checkpoints(export, open_checkpoint(keras_run["first"])), "a")
    assert not older.holds and older.identical == 2 and set(older.differ) == {"sequential/out/kernel",
                                                                              "sequential/out/bias"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ckptlib", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "CKPTLIB_CACHE": os.devnull + "-none", "TF_CPP_MIN_LOG_LEVEL": "3"},
                          timeout=300)


def test_cli_diff_puts_the_verdict_on_top_and_var_accepts_either_name(keras_run):
    proc = _cli("diff", keras_run["export"], keras_run["run"], "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"verdict: export holds the weights of {os.path.basename(keras_run['second'])}: 4/4 identical"
    doc = json.loads(_cli("diff", keras_run["export"], keras_run["run"], "--json", "--no-cache").stdout)
    assert doc["parity"]["holds"] is True and doc["formats"] == {"a": "saved-model", "b": "tf-bundle-v2"}
    key = open_checkpoint(keras_run["second"]).info("sequential/out/bias").name
    shown = [json.loads(_cli("show", keras_run["second"], "--var", name, "--json", "--no-cache").stdout)
             for name in ("sequential/out/bias", key)]
    assert shown[0] == shown[1] and shown[0]["name"] == key and shown[0]["display_name"] == "sequential/out/bias"
    listed = json.loads(_cli("vars", keras_run["export"], "--json").stdout)["variables"]
    assert {v["display_name"] for v in listed if v["kind"] == "model"} == set(keras_run["paths"])


def test_cli_graph_lists_the_saved_model_signatures(keras_run):
    doc = json.loads(_cli("graph", keras_run["export"], "--json").stdout)
    assert [tags["tags"] for tags in doc["meta_graphs"]] == [["serve"]]
    served = next(s for s in doc["signatures"] if s["name"] == "serving_default")
    signature = tf.saved_model.load(keras_run["export"]).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert [(t["dtype"], t["shape"]) for t in served["inputs"]] == [("float32", list(spec.shape))]
    assert doc["functions"] and doc["num_functions"] == len(doc["functions"])


def test_an_object_graph_that_does_not_parse_is_a_one_line_error(tmp_path):
    prefix = str(tmp_path / "bad")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["_CHECKPOINTABLE_OBJECT_GRAPH", "w"], shape_and_slices=["", ""],
                      tensors=[tf.constant(b"\x0a\xff\xff\xff garbage"), tf.constant([1.0])])
    with pytest.raises(errors.CorruptCheckpoint, match="object graph .* does not parse"):
        open_checkpoint(prefix)
    proc = _cli("vars", prefix)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and prefix in proc.stderr


SAMPLE_RUN = os.path.join(ROOT, "sample_checkpoints", "mnist_cnn", "lr5e-3_bs50")


def test_a_frozen_graph_holds_the_step_it_was_frozen_from():
    frozen = open_checkpoint(os.path.join(SAMPLE_RUN, "frozen.pb"))
    assert frozen.format_name == "frozen-graph"
    last, earlier = (open_checkpoint(os.path.join(SAMPLE_RUN, f"model.ckpt-{s}")) for s in (1000, 800))
    reader = tf.train.load_checkpoint(last.prefix)
    for info in frozen.variables:
        np.testing.assert_array_equal(frozen.read(info.name), reader.get_tensor(info.name))
    assert parity(diff_checkpoints(frozen, last), "a").holds
    assert not parity(diff_checkpoints(frozen, earlier), "a").holds


def test_a_tf2_function_frozen_to_unnamed_constants_is_matched_by_content(keras_run, tmp_path):
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(keras_run["export"])  # kept alive: the function reads its variables
    function = loaded.signatures["serving_default"]
    graph_def = convert_variables_to_constants_v2(function).graph.as_graph_def()
    path = tmp_path / "served.pb"
    path.write_bytes(graph_def.SerializeToString())
    frozen, ckpt = open_checkpoint(str(path)), open_checkpoint(keras_run["second"])
    verdict = parity(diff_checkpoints(frozen, ckpt), "a", frozen, ckpt)
    assert verdict.holds and len(verdict.by_content) == 4
    assert {theirs for _, theirs in verdict.by_content} == set(keras_run["paths"])


def test_a_pb_that_is_not_a_graph_def_is_a_one_line_error(tmp_path):
    path = tmp_path / "noise.pb"
    path.write_bytes(b"\xff\xfe not a graph")
    proc = _cli("vars", str(path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a binary GraphDef" in proc.stderr


def test_slots_and_an_optimizer_tracked_under_another_name(tmp_path, keras_run):
    ckpt = open_checkpoint(keras_run["second"])
    assert ckpt.info("adam/sequential_out_kernel_velocity").slot_of == "sequential/out/kernel"
    net = tf.Module()
    net.w = tf.Variable(tf.ones([3, 2]), name="w")
    opt = tf.compat.v1.train.AdamOptimizer(0.1)  # TF slot variables, referenced by the object graph
    opt.minimize(lambda: tf.reduce_sum(net.w ** 2), var_list=[net.w])
    keras_opt = keras.optimizers.SGD(0.1, momentum=0.9)
    keras_opt.apply_gradients([(tf.ones([3, 2]), net.w)])
    prefix = tf.train.Checkpoint(net=net, opt=opt, tuner=keras_opt).write(str(tmp_path / "c"))
    infos = open_checkpoint(prefix).variables
    kinds = {v.name: v.kind for v in infos}
    assert kinds["net/w/.ATTRIBUTES/VARIABLE_VALUE"] == "model"
    slots = [v for v in infos if v.slot_of]
    assert {v.slot_of for v in slots} == {"net/w"} and len(slots) == 2  # Adam m and v
    others = [v for v in infos if v.name.startswith(("opt/", "tuner/")) and v.kind == "model"]
    assert others == []  # beta powers, learning rates and momenta are never model weights
