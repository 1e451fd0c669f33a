"""metagraph.py on real `.meta` files written by TensorFlow's Saver, cross-checked with import_meta_graph."""

from __future__ import annotations

import json
import os

import pytest
from graph_fixtures import cond_v2_run, gb, softmax, tb  # noqa: F401 - fixtures

from ckptlib import errors
from ckptlib.cli import graph_docs
from ckptlib.errors import NodeNotFound
from ckptlib.graph.metagraph import describe_node, load_meta_graph_def, read_meta_graph
from ckptlib.graph.scan import NOT_OUTPUTS


@pytest.fixture
def meta(softmax):
    return softmax["prefixes"][-1] + ".meta"


def _tf_graph(gb, meta_path):
    graph = gb.tf.Graph()
    with graph.as_default():
        gb.v1.train.import_meta_graph(meta_path, clear_devices=True)
    return graph


def test_ops_and_collections_match_tensorflow(gb, softmax, meta):
    info = read_meta_graph(meta)
    assert read_meta_graph(softmax["run"]).path == meta  # a run folder means its latest checkpoint
    assert read_meta_graph(softmax["prefixes"][-1]).path == meta
    graph = _tf_graph(gb, meta)
    assert [o.name for o in info.ops] == [op.name for op in graph.get_operations()]
    assert sum(n for _, n in info.op_type_counts) == info.num_ops
    assert dict(info.op_type_counts)["Placeholder"] == 3
    colls = {c.key: c for c in info.collections}
    assert set(colls) == set(graph.get_all_collection_keys())
    for key in ("variables", "trainable_variables", "global_step"):
        assert colls[key].kind == "bytes_list"
        assert colls[key].items == tuple(v.name for v in graph.get_collection(key))
    assert colls["trainable_variables"].items == ("softmax_linear/weights:0", "softmax_linear/biases:0")
    assert colls["train_op"].items == ("GradientDescent",)
    assert colls["summaries"].items == ("loss:0",)
    assert (colls["my_numbers"].kind, colls["my_numbers"].items) == ("int64_list", ("7",))
    assert (colls["my_floats"].kind, colls["my_floats"].items) == ("float_list", ("0.5",))
    assert (colls["my_strings"].kind, colls["my_strings"].items) == ("bytes_list", ("hello",))
    assert colls["my_tensors"].items == (gb.LOGITS + ":0",)
    assert info.saver.restore_op == "save/restore_all" and info.saver.version == "V2"
    assert info.tensorflow_version == gb.tf.__version__


def test_suggested_inputs_and_outputs(gb, meta):
    info = read_meta_graph(meta)
    inputs = [(p.name, p.dtype, p.shape, p.role) for p in info.suggested_inputs]
    assert inputs == [("x", "float32", (None, 784), "input"), ("labels", "int64", (None,), "labels"),
                      ("Placeholder", "float32", None, "keep_prob")]
    outputs = info.suggested_outputs
    assert outputs[0].name == gb.LOGITS  # consumed only by the loss and in_top_k
    assert "SparseSoftmaxCrossEntropyWithLogits" in outputs[0].reason
    for out in outputs:
        assert out.type not in NOT_OUTPUTS
        assert not out.name.startswith(("save/", "gradients/", "GradientDescent"))


def test_cnn_like_ranking(gb, tmp_path):
    """logits consumed by softmax, loss and an accuracy argmax: logits first, probabilities next."""
    path = str(tmp_path / "cnn.meta")
    graph = gb.tf.Graph()
    with graph.as_default():
        x = gb.v1.placeholder(gb.tf.float32, [None, 784], name="input")
        y = gb.v1.placeholder(gb.tf.int64, [None], name="labels")
        with gb.v1.variable_scope("logits"):
            w = gb.v1.get_variable("weights", [784, 10])
            logits = gb.tf.add(gb.tf.matmul(x, w), 0.1, name="logits")
        with gb.tf.name_scope("prediction"):
            gb.tf.nn.softmax(logits, name="probabilities")
        with gb.tf.name_scope("accuracy"):
            gb.tf.reduce_mean(gb.tf.cast(gb.tf.equal(gb.tf.argmax(logits, 1), y), gb.tf.float32))
        loss = gb.tf.reduce_mean(gb.tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        gb.v1.train.AdamOptimizer().minimize(loss)
        gb.v1.train.export_meta_graph(filename=path)
    names = [o.name for o in read_meta_graph(path).suggested_outputs]
    assert names[:2] == ["logits/logits", "prediction/probabilities"]
    assert not any(n.startswith(("accuracy/", "Adam", "gradients")) for n in names)


def test_node_def_attributes(meta):
    node = describe_node(meta, "save/RestoreV2/tensor_names")
    attrs = dict(node.attrs)
    assert node.type == "Const" and attrs["dtype"] == "string"
    assert attrs["value"] == {"dtype": "string", "shape": [3],
                              "value": ["global_step", "softmax_linear/biases", "softmax_linear/weights"]}
    assert node.consumers == ("save/RestoreV2",)
    x = describe_node(meta, "x:0")  # a tensor name is accepted
    assert dict(x.attrs)["shape"] == [None, 784] and dict(x.attrs)["dtype"] == "float32"
    big = dict(describe_node(meta, "softmax_linear/weights").attrs)
    assert big["dtype"] == "resource" or "shape" in big
    json.dumps(graph_docs.node_doc(meta, node))  # JSON-safe


def test_unknown_node_lists_close_matches(meta):
    with pytest.raises(NodeNotFound, match="Close matches: softmax_linear/weights"):
        describe_node(meta, "softmax_linear/weight")


def test_device_pins_reported_and_cleared(gb, meta, tmp_path):
    proto = load_meta_graph_def(meta)
    for node in proto.graph_def.node:
        if node.name.startswith("softmax_linear/"):
            node.device = "/job:worker/task:0/device:GPU:0"
    pinned = tmp_path / "pinned.meta"
    pinned.write_bytes(proto.SerializeToString())
    info = read_meta_graph(str(pinned))
    assert "/job:worker/task:0/device:GPU:0" in info.devices
    assert any(o.device for o in info.ops) and info.cleared_devices == ()
    cleared = read_meta_graph(str(pinned), clear_devices=True)
    assert cleared.devices == () and not any(o.device for o in cleared.ops)
    assert "/job:worker/task:0/device:GPU:0" in cleared.cleared_devices
    assert describe_node(str(pinned), gb.LOGITS, clear_devices=True).device == ""


def test_signature_defs(gb, meta, tmp_path):
    proto = load_meta_graph_def(meta)
    sig = proto.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    sig.inputs["images"].name = "x:0"
    sig.inputs["images"].dtype = 1
    sig.inputs["images"].tensor_shape.dim.add(size=-1)
    sig.inputs["images"].tensor_shape.dim.add(size=784)
    sig.outputs["logits"].name = gb.LOGITS + ":0"
    path = tmp_path / "signed.meta"
    path.write_bytes(proto.SerializeToString())
    info = read_meta_graph(str(path))
    (signature,) = info.signatures
    assert signature.key == "serving_default" and signature.method_name == "tensorflow/serving/predict"
    assert [(t.key, t.name, t.dtype, t.shape) for t in signature.inputs] == [("images", "x:0", "float32", (None, 784))]
    doc = json.loads(json.dumps(graph_docs.graph_doc(info)))
    (sig_doc,) = doc["signatures"]
    assert sig_doc["name"] == "serving_default"
    assert [(t["name"], t["tensor"]) for t in sig_doc["outputs"]] == [("logits", gb.LOGITS + ":0")]


def test_graph_doc_contract(meta):
    doc = json.loads(json.dumps(graph_docs.graph_doc(read_meta_graph(meta))))
    for key in ("meta", "num_ops", "op_type_counts", "collections", "ops", "suggested_inputs", "suggested_outputs"):
        assert key in doc
    assert doc["num_ops"] == len(doc["ops"])
    assert set(doc["ops"][0]) == {"name", "type", "device", "inputs"}
    assert doc["collections"]["train_op"] == ["GradientDescent"]
    assert doc["suggested_inputs"][0] == {"name": "x", "dtype": "float32", "shape": [None, 784],
                                          "has_default": False, "role": "input"}


def _bad_files(meta, tmp_path):
    data = open(meta, "rb").read()
    index = os.path.splitext(meta)[0] + ".index"
    return {
        "empty": (b"", errors.NotACheckpoint, "empty"),
        "truncated": (data[: len(data) // 2], errors.CorruptCheckpoint, "truncated or garbled"),
        "garbled": (data[:300] + bytes(range(256)) * 8, errors.CorruptCheckpoint, "truncated or garbled"),
        "text": (b"model_checkpoint_path: \"model.ckpt-300\"\n", errors.NotACheckpoint, "not a MetaGraphDef"),
        "index": (open(index, "rb").read(), errors.NotACheckpoint, "not a MetaGraphDef"),
    }


@pytest.mark.parametrize("case", ["empty", "truncated", "garbled", "text", "index"])
def test_bad_meta_files_name_the_file(meta, tmp_path, case):
    content, error, words = _bad_files(meta, tmp_path)[case]
    path = tmp_path / f"{case}.meta"
    path.write_bytes(content)
    with pytest.raises(error, match=words) as info:
        read_meta_graph(str(path))
    assert str(path) in str(info.value)


def test_graph_def_given_as_meta(gb, tmp_path):
    pb = gb.linear_pb(str(tmp_path / "frozen.pb"), gb.np.zeros((784, 10), "float32"), gb.np.zeros(10, "float32"))
    with pytest.raises(errors.NotACheckpoint, match="GraphDef"):
        read_meta_graph(pb)
    with pytest.raises(errors.NotFound, match="no such file"):
        read_meta_graph(str(tmp_path / "missing.meta"))
    with pytest.raises(errors.NotFound, match="no complete checkpoint"):
        read_meta_graph(str(tmp_path))  # a folder means a run: its latest checkpoint's .meta


def test_deep_mnist_style_unnamed_graph(gb, tmp_path):
    """The 'Deep MNIST for experts' layout: every op unnamed, one-hot labels, softmax_cross_entropy_with_logits
    (a scope of Reshape/Slice ops around the logits) and an accuracy from two argmaxes."""
    path = str(tmp_path / "deep.meta")
    tf, v1 = gb.tf, gb.v1
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.float32, [None, 10])
        keep_prob = v1.placeholder(tf.float32)
        hidden = v1.nn.dropout(tf.nn.relu(tf.matmul(x, tf.Variable(tf.zeros([784, 32])))), keep_prob)
        y_conv = tf.matmul(hidden, tf.Variable(tf.zeros([32, 10]))) + tf.Variable(tf.zeros([10]))
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv))
        v1.train.AdamOptimizer(1e-4).minimize(loss)
        tf.reduce_mean(tf.cast(tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1)), tf.float32))
        v1.train.export_meta_graph(filename=path)
    info = read_meta_graph(path)
    assert [p.role for p in info.suggested_inputs] == ["input", "labels", "keep_prob"]
    assert info.suggested_outputs[0].name == y_conv.op.name
    assert not any("entropy" in o.name for o in info.suggested_outputs)


def _export(gb, path, build) -> str:
    with gb.tf.Graph().as_default():
        build()
        gb.v1.train.export_meta_graph(filename=str(path))
    return str(path)


@pytest.mark.parametrize("log_eps", [False, True])
def test_beginners_graph_suggests_softmax(gb, tb, tmp_path, log_eps):
    """'MNIST for ML beginners': unnamed placeholders, y = softmax(xW + b), a hand-written cross-entropy on
    log(y) and an accuracy from argmax(y): Softmax is the output, the two Mean scalars never are."""
    info = read_meta_graph(_export(gb, tmp_path / "beginners.meta", lambda: tb.beginners(log_eps=log_eps)))
    assert [(p.name, p.shape, p.role) for p in info.suggested_inputs] == [
        ("Placeholder", (None, 784), "input"), ("Placeholder_1", (None, 10), "labels")]
    names = [o.name for o in info.suggested_outputs]
    assert names[0] == "Softmax" and "(Log, ArgMax)" in info.suggested_outputs[0].reason
    assert not {"Mean", "Mean_1", "Log", "Sum", "Neg"} & set(names)
    for out in info.suggested_outputs:
        assert not out.name.startswith(("gradients", "GradientDescent"))


@pytest.mark.parametrize("head,accuracy,expected", [("softmax", False, "Softmax"), ("logits", True, "add"),
                                                    ("logits", False, "add")])
def test_beginners_variants(gb, tb, tmp_path, head, accuracy, expected):
    """Without the accuracy the cross-entropy alone points at the output (back through log); with the logits
    head the softmax_cross_entropy_with_logits scope and the argmax both read `add`."""
    info = read_meta_graph(_export(gb, tmp_path / "b.meta", lambda: tb.beginners(head=head, accuracy=accuracy)))
    assert [p.role for p in info.suggested_inputs] == ["input", "labels"]
    assert info.suggested_outputs[0].name == expected
    assert not any(o.name.startswith("Mean") for o in info.suggested_outputs)


def test_activity_regulariser_does_not_move_the_output(gb, tmp_path):
    """A loss that also reads a hidden layer (sum of its squares, a batch reduction) is still the loss: the
    output stays the logits that the cross-entropy and the accuracy share."""
    def build():
        tf, v1 = gb.tf, gb.v1
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.int64, [None])
        hidden = tf.nn.relu(tf.matmul(x, tf.Variable(tf.zeros([784, 32]))))
        logits = tf.matmul(hidden, tf.Variable(tf.zeros([32, 10])))
        xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_, logits=logits))
        v1.train.GradientDescentOptimizer(0.1).minimize(xent + 1e-4 * tf.reduce_sum(tf.square(hidden)))
        tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y_), tf.float32))
    info = read_meta_graph(_export(gb, tmp_path / "reg.meta", build))
    assert [p.role for p in info.suggested_inputs] == ["input", "labels"]
    assert info.suggested_outputs[0].name == "MatMul_1"
    assert not any(o.name in ("Relu", "Square", "Sum") for o in info.suggested_outputs)


def test_batch_reductions_never_suggested(gb, tmp_path):
    """With labels ckptlib cannot recognise (no shape, no telling name), the loss and the accuracy feed
    nothing; still a reduction over the batch dimension is a loss or a metric, not an output."""
    def build():
        tf, v1 = gb.tf, gb.v1
        x = v1.placeholder(tf.float32, [None, 784])
        truth = v1.placeholder(tf.float32)
        logits = tf.matmul(x, tf.Variable(tf.zeros([784, 10])))
        tf.reduce_mean(tf.square(logits - truth))
        tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), tf.cast(truth, tf.int64)), tf.float32), axis=0)
        tf.reduce_max(logits, axis=1)  # one value per image: not a batch reduction
    info = read_meta_graph(_export(gb, tmp_path / "r.meta", build))
    types = {o.name: o.type for o in info.suggested_outputs}
    assert "Mean" not in types and "Sum" not in types and types.get("Max") == "Max"


def test_cond_v2_graph_roles_and_outputs(cond_v2_run):
    info = read_meta_graph(cond_v2_run["prefix"])
    assert [(p.name, p.role) for p in info.suggested_inputs] == [
        ("x", "input"), ("y", "labels"), ("is_training", "training_flag")]
    assert [o.name for o in info.suggested_outputs][:2] == ["out/add", "prediction"]
