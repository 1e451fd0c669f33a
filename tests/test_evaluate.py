"""evaluate.py on real frozen graphs; every accuracy is cross-checked against a direct Session run."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import pytest
from conftest import copy_run, snapshot
from graph_fixtures import (  # noqa: F401
    beginners_logits_run,
    beginners_run,
    cond_v2_run,
    frozen_softmax,
    gb,
    mnist_data,
    reference,
    softmax,
    tb,
)

from ckptlib import errors
from ckptlib.cli import graph as cli_graph, report
from ckptlib.errors import BadGraphIO, DeviceUnavailable, ForbiddenOps, NotFrozen, UnfedPlaceholder, UnsafeDestination
from ckptlib.evaluate import graphfile, opsafety, running
from ckptlib.evaluate.evaluation import eval_history, evaluate, evaluate_checkpoint, evaluate_graph_def
from ckptlib.evaluate.freeze import freeze
from ckptlib.evaluate.types import MnistTestSet

TOLERANCE = 0.0005
TINY = MnistTestSet(np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8), "four blank images")


def _here(model, mnist=TINY, **options):
    """What the evaluation child does, in this process: the graph semantics, without a child's start-up
    (~3 s each). `evaluate` itself, through the child, is tested below and in test_eval_sandbox.py."""
    path = str(model)
    return running.evaluate_graph_def(graphfile.load_graph_def(path), path, mnist, **options)


@pytest.fixture
def weights(softmax):
    return softmax["weights"], softmax["biases"]


def _reference(gb, weights, data, limit=None):
    return gb.reference_accuracy(*weights, data.images[:limit], data.labels[:limit])


def test_accuracy_matches_direct_session_with_keep_prob_fed(gb, frozen_softmax, mnist_data, reference):
    result = evaluate(frozen_softmax.output, mnist=mnist_data)
    assert abs(result.accuracy - reference) <= TOLERANCE and result.accuracy > 0.8
    assert result.feeds == (("Placeholder", 1.0),)  # the tutorial's unnamed keep_prob
    assert (result.input, result.output, result.output_kind) == ("x:0", gb.LOGITS + ":0", "logits")
    assert result.num_examples == 10000 and sum(map(sum, result.confusion)) == 10000
    assert result.num_correct / 10000 == result.accuracy
    counts = np.bincount(mnist_data.labels, minlength=10)
    for digit, accuracy in enumerate(result.per_class_accuracy):
        assert accuracy == result.confusion[digit][digit] / counts[digit]
    assert result.images_per_second > 0 and result.dataset_source == mnist_data.source
    assert result.device in ("CPU",) or result.device.startswith("GPU")


@pytest.mark.parametrize("shape,limit", [((100, 784), 250), ((None, 28, 28, 1), None), ((None, 28, 28), 3000)])
def test_input_layouts_and_fixed_batches(gb, weights, mnist_data, tmp_path, shape, limit):
    pb = gb.linear_pb(str(tmp_path / "m.pb"), *weights, shape=shape)
    result = _here(pb, mnist=mnist_data, limit=limit)
    assert abs(result.accuracy - _reference(gb, weights, mnist_data, limit)) <= TOLERANCE
    assert result.num_examples == (limit or 10000)
    assert result.batch_size == (100 if shape[0] == 100 else 1000)


@pytest.mark.parametrize("labels", ["ids", "one_hot"])
def test_labels_and_metric(gb, weights, mnist_data, tmp_path, labels):
    pb = gb.linear_pb(str(tmp_path / "m.pb"), *weights, labels=labels)
    result = _here(pb, mnist=mnist_data, labels="labels", metric="accuracy", output_tensor="logits", limit=2500)
    assert result.metric.name == "accuracy:0"
    assert abs(result.metric.value - result.accuracy) < 1e-6
    with pytest.raises(UnfedPlaceholder, match=r"labels:0 .*give --labels labels"):
        _here(pb, mnist=mnist_data, metric="accuracy", output_tensor="logits")


def test_in_top_k_metric_of_the_tutorial_graph(frozen_softmax, mnist_data):
    result = _here(frozen_softmax.output, mnist=mnist_data, labels="labels", metric="accuracy:0", limit=3000)
    assert abs(result.metric.value - result.accuracy) < 0.001


def test_extra_placeholders(gb, weights, mnist_data, tmp_path):
    expected = _reference(gb, weights, mnist_data, 2000)
    keep = _here(gb.linear_pb(str(tmp_path / "k.pb"), *weights, extra="keep_prob"), mnist=mnist_data, limit=2000)
    assert keep.feeds == (("keep_prob", 1.0),) and abs(keep.accuracy - expected) <= TOLERANCE
    flag = _here(gb.linear_pb(str(tmp_path / "t.pb"), *weights, extra="is_training"), mnist=mnist_data, limit=2000)
    assert flag.feeds == (("is_training", False),) and abs(flag.accuracy - expected) <= TOLERANCE
    mask_pb = gb.linear_pb(str(tmp_path / "m.pb"), *weights, extra="mask")
    with pytest.raises(UnfedPlaceholder, match=r"mask:0 \(float32 \[None, 10\]\) \(give --feed mask=VALUE\)"):
        _here(mask_pb, mnist=mnist_data)
    masked = _here(mask_pb, mnist=mnist_data, limit=2000, feeds={"mask": "1"})
    assert masked.feeds == (("mask", 1),) and abs(masked.accuracy - expected) <= TOLERANCE
    with pytest.raises(errors.NotFound, match="no placeholder 'mas'.*Close matches: mask"):
        _here(mask_pb, mnist=mnist_data, feeds={"mas": 1})


def test_output_heads_and_raw_pixels(gb, weights, mnist_data, tmp_path):
    expected = _reference(gb, weights, mnist_data, 2000)
    probs = _here(gb.linear_pb(str(tmp_path / "p.pb"), *weights, head="probabilities"), mnist=mnist_data, limit=2000)
    assert (probs.output, probs.output_kind) == ("probabilities:0", "probabilities")
    ids_pb = gb.linear_pb(str(tmp_path / "i.pb"), *weights, head="class_ids")
    ids = _here(ids_pb, mnist=mnist_data, limit=2000, output_tensor="class_ids")
    assert ids.output_kind == "class_ids"
    raw = _here(gb.linear_pb(str(tmp_path / "r.pb"), *weights, divide=True), mnist=mnist_data, limit=2000,
                   raw_pixels=True)
    assert raw.raw_pixels
    for result in (probs, ids, raw):
        assert abs(result.accuracy - expected) <= TOLERANCE


def test_hostile_graphs_refused_before_running(gb, tmp_path):
    target = tmp_path / "pwned.txt"
    for op, run in (("WriteFile", evaluate), ("ReadFile", _here)):  # the refusal crosses from the child
        pb = gb.hostile_pb(str(tmp_path / f"{op}.pb"), op, str(target))
        with pytest.raises(ForbiddenOps, match=rf"Refusing to run .*{op}"):
            run(pb, mnist=TINY)
    assert not target.exists()
    sneaky = gb.v1.GraphDef()  # a function call naming a bare op: TensorFlow would run ReadFile
    images = sneaky.node.add(name="images", op="Placeholder")
    images.attr["dtype"].type = 1
    call = sneaky.node.add(name="call", op="PartitionedCall", input=["images"])
    call.attr["f"].func.name = "ReadFile"
    with pytest.raises(ForbiddenOps, match="calls 'ReadFile', which is not a function of the graph"):
        evaluate_graph_def(sneaky, "sneaky.pb", TINY)


def test_bad_model_files(gb, softmax, tmp_path):
    garbled = tmp_path / "garbled.pb"
    garbled.write_bytes(b"\x0a\xff\xff\xff" + bytes(range(200)))
    for path, error, words in ((garbled, errors.CorruptCheckpoint, "garbled"),
                               (tmp_path / "missing.pb", errors.NotFound, "no such file"),
                               (softmax["prefixes"][0] + ".meta", errors.NotACheckpoint, "freeze it")):
        with pytest.raises(error, match=words) as info:
            _here(str(path), mnist=TINY)
        assert str(path) in str(info.value)
    (tmp_path / "empty.pb").write_bytes(b"")
    with pytest.raises(errors.NotACheckpoint, match="empty"):
        _here(str(tmp_path / "empty.pb"), mnist=TINY)

    def unfrozen():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        gb.tf.matmul(x, gb.v1.get_variable("w", [784, 10]), name="logits")
    with pytest.raises(NotFrozen, match="still holds variables"):
        _here(gb.write_graph(str(tmp_path / "unfrozen.pb"), unfrozen), mnist=TINY)


def test_automatic_input_output_errors(gb, weights, tmp_path):
    def two_inputs():
        a = gb.v1.placeholder(gb.tf.float32, [None, 784], name="a")
        b = gb.v1.placeholder(gb.tf.float32, [None, 784], name="b")
        gb.tf.matmul(a + b, gb.tf.constant(weights[0]), name="logits")
    with pytest.raises(BadGraphIO, match="several could be the image input.*--input"):
        _here(gb.write_graph(str(tmp_path / "two.pb"), two_inputs), mnist=TINY)

    def wrong_output():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        gb.tf.reduce_sum(x, name="total")
    with pytest.raises(BadGraphIO, match="--output"):
        _here(gb.write_graph(str(tmp_path / "sum.pb"), wrong_output), mnist=TINY)


def test_devices(frozen_softmax, gb):
    if gb.tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: the no-GPU error cannot be produced here")
    with pytest.raises(DeviceUnavailable, match="No GPU"):
        _here(frozen_softmax.output, mnist=TINY, device="gpu")
    assert evaluate(frozen_softmax.output, mnist=TINY, device="cpu").device == "CPU"
    with pytest.raises(errors.CkptError, match="Unknown device 'tpu'"):
        _here(frozen_softmax.output, mnist=TINY, device="tpu")


def test_eval_history(gb, softmax, weights, mnist_data, tmp_path):
    history = eval_history(softmax["run"], gb.LOGITS, mnist=mnist_data, limit=2000)
    assert [p.step for p in history.points] == [100, 200, 300] and not history.skipped
    assert history.points[1].meta == softmax["prefixes"][0] + ".meta"  # step 200 has no .meta of its own
    assert abs(history.points[-1].accuracy - _reference(gb, weights, mnist_data, 2000)) <= TOLERANCE
    run = copy_run(softmax["run"], tmp_path)
    with open(os.path.join(run, "model.ckpt-200.data-00000-of-00001"), "r+b") as handle:
        handle.truncate(100)
    damaged = eval_history(run, gb.LOGITS, mnist=mnist_data, limit=500)
    assert [p.step for p in damaged.points] == [100, 300]
    assert [(s.step, "truncated" in s.reason) for s in damaged.skipped] == [(200, True)]
    doc = json.loads(json.dumps(report.eval_history_doc(damaged)))
    assert set(doc["points"][0]) >= {"step", "prefix", "accuracy", "num_examples"} and doc["skipped"][0]["step"] == 200


def test_evaluate_checkpoint_uses_a_temporary_folder(gb, softmax, weights, mnist_data, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = evaluate_checkpoint(softmax["prefixes"][-1], [gb.LOGITS], str(work), mnist=mnist_data, limit=1000)
    assert result.model == softmax["prefixes"][-1] and os.listdir(work) == []
    assert abs(result.accuracy - _reference(gb, weights, mnist_data, 1000)) <= TOLERANCE
    run = copy_run(softmax["run"], tmp_path)
    before = snapshot(run)
    with pytest.raises(UnsafeDestination):
        evaluate_checkpoint(run, [gb.LOGITS], run, mnist=mnist_data)
    assert snapshot(run) == before


def test_cli_handlers(gb, softmax, frozen_softmax, tmp_path):
    parser = argparse.ArgumentParser()
    cli_graph.add_subcommands(parser.add_subparsers(dest="command"))
    from graph_fixtures import MNIST_DIR

    args = parser.parse_args(["eval", frozen_softmax.output, "--mnist", MNIST_DIR, "--limit", "500", "--feed",
                              "Placeholder=1", "--labels", "labels", "--metric", "accuracy", "--json"])
    doc, text = cli_graph.HANDLERS[args.command](args)
    doc = json.loads(json.dumps(doc))
    assert set(doc) >= {"model", "input", "output", "dataset", "accuracy", "device", "images_per_second", "feeds",
                        "metric"}
    assert doc["dataset"]["num_examples"] == 500 and doc["feeds"] == {"Placeholder": 1}
    assert doc["metric"]["name"] == "accuracy:0" and "accuracy:" in text
    assert doc["limits"] == {"time_s": 120, "memory_mb": 4096} and doc["padding"] == 0
    args = parser.parse_args(["eval-history", softmax["run"], "--outputs", gb.LOGITS, "--mnist", MNIST_DIR,
                              "--limit", "200"])
    doc, text = cli_graph.HANDLERS[args.command](args)
    assert [p["step"] for p in doc["points"]] == [100, 200, 300] and "best: step" in text
    args = parser.parse_args(["graph", softmax["prefixes"][-1] + ".meta"])
    doc, text = cli_graph.HANDLERS[args.command](args)
    assert doc["suggested_outputs"][0]["name"] == gb.LOGITS and gb.LOGITS in text
    with pytest.raises(errors.CkptError, match="NAME=VALUE"):
        cli_graph.HANDLERS["eval"](parser.parse_args(["eval", frozen_softmax.output, "--feed", "oops"]))


@pytest.mark.parametrize("run,output,kind", [("beginners_logits_run", "add", "logits"),
                                             ("beginners_run", "Softmax", "probabilities")])
def test_frozen_with_its_accuracy_op_finds_the_output(request, tb, mnist_data, tmp_path, run, output, kind):
    """The beginners' graph frozen with its output and its accuracy (for --metric): the scalar accuracy
    comes first in no ranking, the [N, 10] output is found without --output."""
    built = request.getfixturevalue(run)
    pb = freeze(built["prefix"], [output, "Mean_1"], str(tmp_path / "model.pb")).output
    result = _here(pb, mnist=mnist_data, limit=2000)
    assert (result.input, result.output, result.output_kind) == ("Placeholder:0", output + ":0", kind)
    direct = tb.session_accuracy(built["prefix"], output, "Placeholder", mnist_data.images[:2000],
                                 mnist_data.labels[:2000])
    assert abs(result.accuracy - direct) <= TOLERANCE and result.accuracy > 0.8
    graded = _here(pb, mnist=mnist_data, limit=2000, labels="Placeholder_1", metric="Mean_1")
    assert graded.output == output + ":0" and abs(graded.metric.value - graded.accuracy) < 1e-6


def test_cond_v2_with_resource_variables_freezes_and_evaluates(gb, tb, cond_v2_run, mnist_data, tmp_path):
    """tf.cond in a TF2-behaviour graph (If, resource variables) with gradients built: the branches hold
    OptionalFromValue/OptionalNone, which are pure and must not stop freezing or evaluation."""
    assert {"OptionalFromValue", "OptionalNone"} <= cond_v2_run["function_ops"]
    assert cond_v2_run["ops"] & {"If", "StatelessIf"}
    pb = freeze(cond_v2_run["prefix"], ["prediction", "Mean_1"], str(tmp_path / "bn.pb")).output
    graph_def = gb.v1.GraphDef.FromString((tmp_path / "bn.pb").read_bytes())
    assert {n.op for f in graph_def.library.function for n in f.node_def} & {"OptionalFromValue", "OptionalNone"}
    assert opsafety.forbidden_ops(graph_def) == []
    result = _here(pb, mnist=mnist_data, limit=2000)
    assert result.feeds == (("is_training", False),) and result.output == "prediction:0"
    direct = tb.session_accuracy(cond_v2_run["prefix"], "prediction", "x", mnist_data.images[:2000],
                                 mnist_data.labels[:2000], {"is_training": False})
    assert abs(result.accuracy - direct) <= TOLERANCE and result.accuracy > 0.8
    logits = _here(pb, mnist=mnist_data, limit=2000, output_tensor="out/add")
    assert logits.accuracy == result.accuracy


def test_allowlist_names_real_ops_and_keeps_refusing_io(gb):
    unknown = sorted(op for op in opsafety.COMPUTE_OPS | opsafety.VARIABLE_OPS if not hasattr(gb.tf.raw_ops, op))
    assert unknown == []
    for op in ("ReadFile", "WriteFile", "MatchingFiles", "SaveV2", "Save", "MergeV2Checkpoints", "PyFunc",
               "PyFuncStateless", "EagerPyFunc", "WholeFileReaderV2", "TFRecordReaderV2", "ReaderReadV2",
               "FIFOQueueV2", "QueueDequeueV2", "TFRecordDataset", "IteratorGetNext", "WriteScalarSummary",
               "Empty"):
        assert hasattr(gb.tf.raw_ops, op) and op not in opsafety.COMPUTE_OPS, op
        assert op not in opsafety.VARIABLE_OPS, op
    for op in ("OptionalFromValue", "OptionalNone", "OptionalHasValue", "OptionalGetValue", "AsString",
               "StringToNumber", "StopGradient", "PreventGradient", "ZerosLike", "OnesLike", "SelectV2", "Switch",
               "Merge", "Enter", "Exit", "NextIteration", "LoopCond", "TensorArrayV3", "Assert", "ReluGrad"):
        assert op in opsafety.COMPUTE_OPS, op


def test_string_and_print_ops_run_but_printing_to_a_file_is_refused(gb, weights, mnist_data, tmp_path):
    def graph(stream, name):
        def build():
            x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
            one = gb.tf.strings.to_number(gb.tf.strings.as_string(gb.tf.constant(1.0)))  # AsString, StringToNumber
            printed = gb.tf.print("batch of", gb.tf.shape(x)[0], output_stream=stream)  # StringFormat, PrintV2
            with gb.tf.control_dependencies([printed, gb.tf.debugging.assert_non_negative(x)]):  # Assert
                x = gb.tf.identity(x) * one
            gb.tf.add(gb.tf.matmul(x, gb.tf.constant(weights[0])), gb.tf.constant(weights[1]), name="logits")
        return gb.write_graph(str(tmp_path / name), build)

    result = _here(graph(sys.stderr, "stderr.pb"), mnist=mnist_data, limit=1000)
    assert abs(result.accuracy - _reference(gb, weights, mnist_data, 1000)) <= TOLERANCE
    target = tmp_path / "printed.txt"
    with pytest.raises(ForbiddenOps, match=r"PrintV2 prints to 'file://"):
        _here(graph("file://" + str(target), "file.pb"), mnist=mnist_data, limit=1000)
    assert not target.exists()


def test_output_found_downstream_when_nothing_is_suggested(gb, weights, mnist_data, tmp_path):
    """x.W + b feeding only a batch mean: no suggestion fits, the [N, 10] op downstream of the input does."""
    def build():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        logits = gb.tf.matmul(x, gb.tf.constant(weights[0])) + gb.tf.constant(weights[1])
        gb.tf.reduce_mean(logits, name="mean_score")
    result = _here(gb.write_graph(str(tmp_path / "m.pb"), build), mnist=mnist_data, limit=1000)
    assert result.output == "add:0"
    assert abs(result.accuracy - _reference(gb, weights, mnist_data, 1000)) <= TOLERANCE
