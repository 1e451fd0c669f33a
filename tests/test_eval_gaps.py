"""Real files that evaluation used to trip on: LeNet's 32x32 input, class ids without a static shape, TF 1.0
placeholders, Estimator input queues, text-format graphs and a SavedModel's saved_model.pb."""

from __future__ import annotations

import os

import numpy as np
import pytest
from graph_fixtures import gb, mnist_data  # noqa: F401 - fixtures

from ckptlib import errors
from ckptlib.evaluate import graphfile, running
from ckptlib.evaluate.evaluation import eval_history
from ckptlib.evaluate.freeze import freeze_graph_def

TOLERANCE = 0.0005
LIMIT = 2000


@pytest.fixture
def weights():
    rng = np.random.RandomState(7)  # random weights: accuracy is low but must match the direct computation exactly
    return rng.normal(size=(784, 10)).astype(np.float32), rng.normal(size=10).astype(np.float32)


def _here(model, data, **options):
    """What the evaluation child runs, in this process (the child itself: test_eval_sandbox.py)."""
    return running.evaluate_graph_def(graphfile.load_graph_def(str(model)), str(model), data, limit=LIMIT, **options)


def _reference(gb, weights, data):
    return gb.reference_accuracy(*weights, data.images[:LIMIT], data.labels[:LIMIT])


def test_lenet_input_gets_mnist_padded_by_two_pixels(gb, weights, mnist_data, tmp_path):
    padded = np.zeros((32, 32, 10), np.float32)  # the same linear model on the padded digit's inner 28x28
    padded[2:30, 2:30] = weights[0].reshape(28, 28, 10)

    def build():
        x = gb.v1.placeholder(gb.tf.float32, [None, 32, 32, 1], name="images")
        flat = gb.tf.reshape(x, [-1, 1024])
        gb.tf.add(gb.tf.matmul(flat, gb.tf.constant(padded.reshape(1024, 10))), gb.tf.constant(weights[1]),
                  name="logits")
    result = _here(gb.write_graph(str(tmp_path / "lenet.pb"), build), mnist_data)
    assert result.padding == 2 and result.input == "images:0"
    assert abs(result.accuracy - _reference(gb, weights, mnist_data)) <= TOLERANCE


def test_class_ids_without_a_static_shape_are_accepted_when_named(gb, weights, mnist_data, tmp_path):
    def build():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="images")
        scale = gb.v1.placeholder_with_default(gb.tf.constant(1.0), shape=None)  # unknown rank: so is the argmax
        logits = (gb.tf.matmul(x, gb.tf.constant(weights[0])) + gb.tf.constant(weights[1])) * scale
        gb.tf.argmax(logits, 1, name="class_ids")
    pb = gb.write_graph(str(tmp_path / "ids.pb"), build)
    graph_def = graphfile.load_graph_def(pb)
    assert not next(n for n in graph_def.node if n.name == "class_ids").attr["_output_shapes"].list.shape
    result = _here(pb, mnist_data, output_tensor="class_ids")
    assert result.output_kind == "class_ids"
    assert abs(result.accuracy - _reference(gb, weights, mnist_data)) <= TOLERANCE


def test_a_tf1_placeholder_shape_kept_only_in_output_shapes(gb, weights, mnist_data, tmp_path):
    pb = gb.linear_pb(str(tmp_path / "new.pb"), *weights)
    graph_def = graphfile.load_graph_def(pb)
    images = next(n for n in graph_def.node if n.name == "images")
    images.attr["_output_shapes"].list.shape.add().CopyFrom(images.attr["shape"].shape)
    images.attr["shape"].shape.Clear()  # what TF 1.0 wrote: an empty shape, read today as a scalar
    old = tmp_path / "tf1.pb"
    old.write_bytes(graph_def.SerializeToString())
    result = _here(old, mnist_data)
    assert result.input == "images:0" and abs(result.accuracy - _reference(gb, weights, mnist_data)) <= TOLERANCE


def _queue_run(gb, weights, run_dir: str) -> list[str]:
    """An Estimator-style graph (numpy_input_fn's FIFO queue: index, features, labels) saved twice."""
    graph = gb.tf.Graph()
    with graph.as_default():
        queue = gb.v1.FIFOQueue(1000, [gb.tf.int64, gb.tf.float32, gb.tf.int64], shapes=[[], [784], []],
                                name="fifo_queue")
        queue.enqueue_many([gb.tf.zeros([1], gb.tf.int64), gb.tf.zeros([1, 784]), gb.tf.zeros([1], gb.tf.int64)],
                           name="enqueue")  # the queue runner's op: in the .meta, never in the frozen graph
        _, features, labels = queue.dequeue_up_to(100)
        w = gb.v1.get_variable("w", initializer=weights[0])
        b = gb.v1.get_variable("b", initializer=weights[1])
        logits = gb.tf.add(gb.tf.matmul(features, w), b, name="logits")
        gb.tf.reduce_mean(gb.tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss")
        saver = gb.v1.train.Saver()
        with gb.v1.Session(graph=graph) as sess:
            sess.run(gb.v1.global_variables_initializer())
            return [saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=s) for s in (1, 2)]


def test_an_input_queue_is_cut_off_and_the_tensor_after_it_fed(gb, weights, mnist_data, tmp_path):
    prefixes = _queue_run(gb, weights, str(tmp_path / "run"))
    frozen = freeze_graph_def(prefixes[-1], "logits")
    ops = {n.name: n.op for n in frozen.graph_def.node}
    assert ops["fifo_queue_DequeueUpTo/component_1"] == "Placeholder"
    assert not set(ops.values()) & {"FIFOQueueV2", "QueueDequeueUpToV2", "QueueEnqueueManyV2"}
    expected = _reference(gb, weights, mnist_data)
    result = running.evaluate_graph_def(frozen.graph_def, prefixes[-1], mnist_data, limit=LIMIT)
    assert result.input == "fifo_queue_DequeueUpTo/component_1:0"  # suggested automatically
    assert abs(result.accuracy - expected) <= TOLERANCE
    named = running.evaluate_graph_def(frozen.graph_def, prefixes[-1], mnist_data, limit=LIMIT,
                                       input_tensor="fifo_queue_DequeueUpTo:1")  # the name people fed by hand
    assert named.accuracy == result.accuracy
    history = eval_history(str(tmp_path / "run"), "logits", mnist=mnist_data, limit=LIMIT)  # one child, both steps
    assert [p.step for p in history.points] == [1, 2] and not history.skipped
    assert all(abs(p.accuracy - expected) <= TOLERANCE for p in history.points)


def test_text_format_graphs_and_saved_models_are_named_for_what_they_are(gb, weights, tmp_path):
    graph_def = graphfile.load_graph_def(gb.linear_pb(str(tmp_path / "m.pb"), *weights))
    gb.tf.io.write_graph(graph_def, str(tmp_path), "m.pbtxt", as_text=True)
    with pytest.raises(errors.UnsupportedFormat, match=r"m\.pbtxt': a text-format GraphDef: .*as_text=False"):
        graphfile.load_graph_def(str(tmp_path / "m.pbtxt"))
    (tmp_path / "broken.pbtxt").write_text('node {\n  name: "x"\n  op: \n')
    with pytest.raises(errors.NotACheckpoint, match="a text-format GraphDef that does not parse"):
        graphfile.load_graph_def(str(tmp_path / "broken.pbtxt"))

    class Doubler(gb.tf.Module):
        @gb.tf.function(input_signature=[gb.tf.TensorSpec([None, 784], gb.tf.float32)])
        def __call__(self, x):
            return x * 2.0
    gb.tf.saved_model.save(Doubler(), str(tmp_path / "saved"))
    saved_pb = tmp_path / "saved" / "saved_model.pb"
    with pytest.raises(errors.UnsupportedFormat, match=r"a SavedModel's saved_model\.pb: pass its folder") as info:
        graphfile.load_graph_def(str(saved_pb))
    assert str(tmp_path / "saved") in str(info.value)
